// Swagger UI for /docs: its files come from this server (no CDN), and this script is a file
// of its own, so the page runs under the same Content Security Policy as the rest
// (no inline script). "Authorize" takes a bearer token, kept in this page only.
globalThis.ui = globalThis.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [globalThis.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  persistAuthorization: false,
});
