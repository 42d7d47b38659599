/**
 * The model registry: model files the user added (e.g. the published SRFlow_*.pth / RRDB_*.pth),
 * stored under `<home>/models/` with `registry.json` describing each one (its recognised
 * configuration, SHA-256, size). `home` is `$SRFLOW_HOME` or the platform's cache folder
 * (`registryHome`). Every change is atomic: a file that does not load is refused before anything is
 * written; the copy is written to a temporary name, checked against the source's SHA-256 and
 * renamed; `registry.json` is replaced by rename.
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { extname, join } from 'node:path';
import { writeFileAtomic } from '../io/safetensors.js';
import { loadNetDetailed } from '../models/api.js';

export const REGISTRY_FORMAT = 'srflow-registry';

export interface RegistryEntry {
  name: string;
  /** File name inside `<home>/models/`. */
  file: string;
  sha256: string;
  bytes: number;
  format: 'pth' | 'safetensors';
  /** srflow (an SRFlow model) or rrdb (an RRDB network alone: deterministic SR). */
  kind: 'srflow' | 'rrdb';
  /** The published layout it has (`SRFlow_DF2K_4X`, …), or null. */
  layout: string | null;
  description: string;
  scale: number;
  parameters: number;
  /** The configuration it loads with (published option layout). */
  config: Record<string, unknown>;
  /** True when the configuration was given when adding (then it is passed on every load). */
  configGiven: boolean;
  /** Where it was added from, and when. */
  source: string;
  added: string;
}

interface RegistryFile {
  format: string;
  version: 1;
  models: RegistryEntry[];
}

/**
 * The registry's home folder: `SRFLOW_HOME` when set, else the platform's cache folder
 * (Linux: `$XDG_CACHE_HOME/srflow` or `~/.cache/srflow`; macOS: `~/Library/Caches/srflow`;
 * Windows: `%LOCALAPPDATA%\srflow\Cache`).
 */
export function registryHome(env: Record<string, string | undefined>, platform: string = process.platform, home: string = homedir()): string {
  if (env.SRFLOW_HOME) return env.SRFLOW_HOME;
  if (platform === 'darwin') return join(home, 'Library', 'Caches', 'srflow');
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(home, 'AppData', 'Local'), 'srflow', 'Cache');
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'srflow');
}

export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export class ModelRegistry {
  readonly dir: string;
  readonly index: string;

  constructor(readonly home: string) {
    this.dir = join(home, 'models');
    this.index = join(this.dir, 'registry.json');
  }

  private read(): RegistryFile {
    if (!existsSync(this.index)) return { format: REGISTRY_FORMAT, version: 1, models: [] };
    let v: RegistryFile;
    try {
      v = JSON.parse(readFileSync(this.index, 'utf8')) as RegistryFile;
    } catch (e) {
      throw new Error(`The model registry ${this.index} is unreadable (${(e as Error).message}); fix or delete it`);
    }
    if (!v || v.format !== REGISTRY_FORMAT || !Array.isArray(v.models))
      throw new Error(`The model registry ${this.index} is not an srflow registry file; fix or delete it`);
    return v;
  }

  private write(f: RegistryFile): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(this.index, [Buffer.from(`${JSON.stringify(f, null, 1)}\n`)]);
  }

  list(): RegistryEntry[] {
    return this.read()
      .models.slice()
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): RegistryEntry | undefined {
    return this.read().models.find((m) => m.name === name);
  }

  pathOf(e: RegistryEntry): string {
    return join(this.dir, e.file);
  }

  /**
   * Add a model file under `name` (default: the file's name without extension). The file is loaded
   * first (every tensor read and checked); a file that does not load is refused and nothing changes.
   */
  add(file: string, opts: { name?: string; config?: string | Record<string, unknown> } = {}): RegistryEntry {
    const ext = extname(file).toLowerCase() === '.pth' ? '.pth' : extname(file).toLowerCase() === '.safetensors' ? '.safetensors' : '';
    const base = file.replace(/^.*[\\/]/, '');
    const name = opts.name ?? (ext ? base.slice(0, base.length - ext.length) : base);
    if (!NAME_RE.test(name))
      throw new Error(`Expected a model name of letters, digits, '.', '_' or '-' (starting with a letter or digit) but received ${JSON.stringify(name)}`);
    const reg = this.read();
    if (reg.models.some((m) => m.name === name))
      throw new Error(`A model named ${name} is already registered (srflow models remove ${name} first, or choose another --name)`);
    let loaded;
    try {
      loaded = loadNetDetailed(file, { config: opts.config });
    } catch (e) {
      throw new Error(`Refusing to add ${file}: ${(e as Error).message}`);
    }
    let parameters = 0;
    for (const p of loaded.net.parameters().values()) parameters += p.size;
    const sha256 = sha256File(file);
    const bytes = statSync(file).size;
    const fileName = `${name}${ext || (loaded.format === 'pth' ? '.pth' : '.safetensors')}`;
    const dest = join(this.dir, fileName);
    mkdirSync(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${fileName}.${process.pid}.${Date.now()}.tmp`);
    try {
      copyFileSync(file, tmp);
      const got = sha256File(tmp);
      if (got !== sha256) throw new Error(`the copy's SHA-256 ${got} differs from the source's ${sha256} (did the file change while it was added?)`);
      renameSync(tmp, dest);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        /* not created */
      }
      throw new Error(`Cannot add ${file} to the registry: ${(e as Error).message}`);
    }
    const entry: RegistryEntry = {
      name,
      file: fileName,
      sha256,
      bytes,
      format: loaded.format,
      kind: loaded.kind,
      layout: loaded.layout?.published ?? null,
      description:
        loaded.layout?.description ??
        `${loaded.kind === 'rrdb' ? 'RRDB network' : 'SRFlow'} ${loaded.net.scale}x (configuration ${loaded.configSource === 'option' ? 'given' : 'from the file'})`,
      scale: loaded.net.scale,
      parameters,
      config: loaded.net.config.opt,
      configGiven: loaded.configSource === 'option',
      source: file,
      added: new Date().toISOString(),
    };
    try {
      this.write({ ...reg, models: [...reg.models, entry] });
    } catch (e) {
      try {
        unlinkSync(dest);
      } catch {
        /* already gone */
      }
      throw new Error(`Cannot update the model registry ${this.index}: ${(e as Error).message}`);
    }
    return entry;
  }

  /** Remove a registered model and its stored file. */
  remove(name: string): RegistryEntry {
    const reg = this.read();
    const e = reg.models.find((m) => m.name === name);
    if (!e)
      throw new Error(
        `No model named ${name} is registered${reg.models.length ? ` (registered: ${reg.models.map((m) => m.name).join(', ')})` : ' (the registry is empty)'}`,
      );
    this.write({ ...reg, models: reg.models.filter((m) => m !== e) });
    try {
      unlinkSync(this.pathOf(e));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`Removed ${name} from the registry but could not delete ${this.pathOf(e)}: ${(err as Error).message}`);
    }
    return e;
  }

  /**
   * A registered model's file and (when it was given on adding) configuration, or null when no
   * model has that name.
   */
  resolve(name: string): { path: string; config?: Record<string, unknown>; entry: RegistryEntry } | null {
    if (!NAME_RE.test(name) || !existsSync(this.index)) return null;
    const e = this.get(name);
    if (!e) return null;
    const path = this.pathOf(e);
    if (!existsSync(path)) throw new Error(`The registered model ${name} is missing its file ${path}; run srflow models remove ${name} and add it again`);
    return { path, ...(e.configGiven ? { config: e.config } : {}), entry: e };
  }
}
