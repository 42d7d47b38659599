// ESLint (flat config): `npm run lint` runs it with `prettier --check`; Prettier owns the layout,
// so no stylistic rule is enabled here. Type-checking is `npm run typecheck` (tsc), not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import srflow from './scripts/eslint-layers.mjs';

export default tseslint.config(
  { ignores: ['**/node_modules/', '**/dist/', 'build/', 'wasm/', 'runs/', 'models/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names are deliberately unused (a callback's leading parameters, a destructured
      // field dropped from a rest object).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Non-null assertions mark invariants the types cannot carry (a map entry set just before, a
      // buffer allocated on first use); the kernels and the flow rely on them in hot loops.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Native addon, wasm and WebGPU bindings are untyped at the boundary; `any` stays explicit there.
      '@typescript-eslint/no-explicit-any': 'off',
      // `while (true)` / `for (;;)` loops that end with `break` or `return` are the clearest form of
      // the parsers' and the schedulers' loops.
      'no-constant-condition': ['error', { checkLoops: false }],
      // Empty catch blocks are deliberate best-effort clean-ups (unlink a temporary file, close a
      // handle), each where failing to clean up must not hide the first error.
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { srflow },
    rules: { 'srflow/layers': 'error' },
  },
  {
    // The browser page: its modules run in the main thread and in a worker.
    files: ['web/src/**/*.ts'],
    languageOptions: { globals: { ...globals.browser, ...globals.worker } },
  },
);
