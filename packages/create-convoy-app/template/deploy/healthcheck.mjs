// The Dockerfile's HEALTHCHECK: exits 0 when the server answers /health with 200, which it does
// only while the database answers. Node's own fetch, because slim images have no curl.
const port = process.env.PORT || '3737';
try {
  const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
