/// <reference types="vitest" />
import { defineConfig } from 'vite';

// No @vitejs/plugin-react: esbuild's automatic JSX runtime is all React needs
// here (decision 0057). The console is served by the broker under /ui/.
export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      onwarn(w, warn) {
        // react-router's "use client" marks React Server Components; meaningless in a SPA bundle.
        if (w.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(w);
      },
    },
  },
  server: {
    // `npm run dev` against a broker on :8080 (same origin through the proxy,
    // so the session cookie works).
    proxy: { '/v1': 'http://127.0.0.1:8080', '/auth': 'http://127.0.0.1:8080' },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
  },
});
