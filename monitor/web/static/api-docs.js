// Starts Swagger UI on /api/docs (a file, not an inline script, so the page's CSP allows it).
(function () {
  "use strict";
  var box = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: box.getAttribute("data-openapi"), dom_id: "#swagger-ui", deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis], layout: "BaseLayout",
  });
})();
