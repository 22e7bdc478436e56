/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The UI runs inside the Tauri webview only: no dev proxy, no CDN, every asset
// bundled. `npm run dev` serves it for `cargo tauri dev` (src-tauri loads
// http://localhost:1420 when built without its custom-protocol feature).
export default defineConfig({
  clearScreen: false,
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  server: {
    port: 1420,
    strictPort: true,
    host: "127.0.0.1",
    // The app's logo comes from the repository's icons/ folder.
    fs: { allow: [".", "../icons"] },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "safari16",
    // No inline polyfill script: the webview's CSP allows scripts from 'self' only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    restoreMocks: true,
  },
});
