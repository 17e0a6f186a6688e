// Starts Swagger UI on the gateway's generated OpenAPI document. Kept out of
// the page so the page needs no inline script.
window.ui = SwaggerUIBundle({
  url: "/api/docs/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
});
