// Runs when `node-gyp rebuild` fails during `npm install`: the engine still works on the
// TypeScript reference kernels, only slower. Say so loudly but do not fail the install.
console.warn(
  '\n[srflow] WARNING: the native kernels (C++ addon) could not be built.\n' +
    '[srflow] srflow will run on its TypeScript reference kernels, which are much slower.\n' +
    '[srflow] Install python3, make and a C++ compiler, then run `npm rebuild srflow`.\n',
);
