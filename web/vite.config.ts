import { defineConfig } from 'vite';

// The console is served by the Nest app under /console (src/console/console.static.ts).
export default defineConfig({
  base: '/console/',
  publicDir: 'public',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline polyfill script: the page's CSP allows scripts from 'self' only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
});
