import { resolve } from "node:path";
import { defineConfig } from "vite";

// Three pages, one build: the console (/), the crew terminal and the coordinator's page.
// Everything is bundled (no CDN, no web fonts): the service serves dist/ on a closed network.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 600,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        terminal: resolve(import.meta.dirname, "terminal.html"),
        coordinator: resolve(import.meta.dirname, "coordinator.html"),
      },
    },
  },
  server: {
    // `npm run dev` against a service on :8000.
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/ws": { target: "ws://127.0.0.1:8000", ws: true },
    },
  },
});
