// Swagger UI on the edge's own OpenAPI document; "Try it out" calls the same origin.
// Log in with POST /v1/sessions, then "Authorize" with the accessToken.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#api",
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: false,
  displayOperationId: true,
});
