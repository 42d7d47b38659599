/**
 * Files read at positions by the lazy readers (openPth, openSafetensors): opened once, read in
 * pieces as tensors are asked for, closed once.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Fills `into` from byte `pos` of the file `fd`, or throws `eof()` at the end of the file (a truncated file). */
export function readFully(fd: number, into: Uint8Array, pos: number, eof: () => Error): void {
  let off = 0;
  while (off < into.byteLength) {
    const got = readSync(fd, into, off, Math.min(into.byteLength - off, 1 << 30), pos + off);
    if (got <= 0) throw eof();
    off += got;
  }
}

/** An open file as `openForReading` hands it to its reader. */
export interface ReadableFile {
  readonly size: number;
  /** false once the reader's `close` has run. */
  readonly isOpen: boolean;
  /** Fills `into` from byte `pos`. */
  read(into: Uint8Array, pos: number): void;
}

/**
 * Opens `path`, builds a reader over it with `build` and returns that with a `close` (the file's,
 * once); a throw from `build` closes the file. `eof` is the error for a read past the end.
 */
export function openForReading<R extends object>(path: string, eof: () => Error, build: (f: ReadableFile) => R): R & { close(): void } {
  const fd = openSync(path, 'r');
  let open = true;
  const close = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  try {
    const size = fstatSync(fd).size;
    const f: ReadableFile = {
      size,
      get isOpen() {
        return open;
      },
      read: (into, pos) => readFully(fd, into, pos, eof),
    };
    return { ...build(f), close };
  } catch (e) {
    close();
    throw e;
  }
}
