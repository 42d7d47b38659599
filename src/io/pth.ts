/**
 * Safe reader for PyTorch checkpoints (`torch.save(state_dict)`): the zip format of torch >= 1.6,
 * and the legacy format of older versions (see `isLegacyPth`).
 *
 * The archive holds `<folder>/data.pkl` (a pickle describing the dict), one raw little-endian
 * storage per tensor under `<folder>/data/<key>`, `<folder>/version` and sometimes
 * `<folder>/byteorder`. The pickle is interpreted by a small virtual machine that only knows the
 * opcodes `torch.save` emits and only resolves an allow-list of globals (OrderedDict, the tensor
 * rebuild helpers, storage types): nothing is ever executed, and any other global is refused.
 *
 * `openPth` reads only the zip directory and the pickle; each tensor is then read from the file on
 * demand, straight into its final Float32Array when it is a contiguous little-endian float32 tensor
 * in a STORED entry (what torch.save writes). `parsePth` (a buffer already in memory, e.g. in the
 * browser): float32 tensors that are contiguous, 4-byte aligned and own their storage are views
 * into that buffer (no copy). Other tensors (other dtypes, strided views,
 * misaligned data, storages shared by several tensors, big-endian files) are materialised as fresh
 * contiguous float32 arrays. Every dtype is returned as float32 (integer and bool tensors such as
 * `num_batches_tracked` included).
 */
import type { LazyTensor, RawTensor } from './safetensors.js';
import { openForReading } from './file.js';

export type { LazyTensor };
import { readZipDirectory, readZipDirectoryFrom, zipCheckCrc, zipEntryData, zipEntryDecode, ZipFormatError, type ZipEntry } from './zip.js';

export class PthError extends Error {
  override name = 'PthError';
}

export interface PthOptions {
  /**
   * When the pickle holds several dicts of tensors (e.g. `{params, params_ema}`), the key of the
   * one to load. Without it, a dict whose values are tensors is used directly and a dict holding
   * exactly one such dict is unwrapped.
   */
  entry?: string;
}

// ---------------------------------------------------------------------------------------------
// Python values produced by the pickle machine.

class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
class PyDict {
  readonly map = new Map<unknown, PyValue>();
}
class PySet {
  readonly items: PyValue[] = [];
}
class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}
interface DtypeInfo {
  name: string;
  size: number;
}
class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: DtypeInfo,
    readonly location: string,
    readonly numel: number,
  ) {}
  refs = 0;
}
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}
type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PySet | PyGlobal | StorageRef | TensorRef;

const STORAGE_TYPES: Record<string, DtypeInfo> = {
  FloatStorage: { name: 'float32', size: 4 },
  DoubleStorage: { name: 'float64', size: 8 },
  HalfStorage: { name: 'float16', size: 2 },
  BFloat16Storage: { name: 'bfloat16', size: 2 },
  LongStorage: { name: 'int64', size: 8 },
  IntStorage: { name: 'int32', size: 4 },
  ShortStorage: { name: 'int16', size: 2 },
  CharStorage: { name: 'int8', size: 1 },
  ByteStorage: { name: 'uint8', size: 1 },
  BoolStorage: { name: 'bool', size: 1 },
};

/** Globals a state_dict pickle may reference; everything else is refused. */
const ALLOWED_GLOBALS = new Set<string>([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Tensor',
  'torch.nn.parameter.Parameter',
  'builtins.set',
  'builtins.frozenset',
  '__builtin__.set',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
]);

function typeName(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return v.constructor.name;
  return typeof v;
}

// ---------------------------------------------------------------------------------------------
// The pickle virtual machine (protocols 0-5, the subset torch.save uses plus cheap extras).

const OPNAMES: Record<number, string> = {
  0x28: 'MARK',
  0x2e: 'STOP',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4c: 'LONG',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x58: 'BINUNICODE',
  0x61: 'APPEND',
  0x62: 'BUILD',
  0x63: 'GLOBAL',
  0x64: 'DICT',
  0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS',
  0x67: 'GET',
  0x68: 'BINGET',
  0x69: 'INST',
  0x6a: 'LONG_BINGET',
  0x6c: 'LIST',
  0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS',
  0x47: 'BINFLOAT',
  0x80: 'PROTO',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8b: 'LONG4',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

function decodeRawUnicodeEscape(bytes: Uint8Array): string {
  // Python's raw-unicode-escape: latin-1, except \uXXXX and \UXXXXXXXX.
  const s = latin1.decode(bytes);
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, a: string | undefined, b: string | undefined) =>
    String.fromCodePoint(parseInt((a ?? b)!, 16)),
  );
}

function intFromLE(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Interpret a state_dict pickle. `persistentLoad` resolves BINPERSID ids (storages). */
function unpickle(data: Uint8Array, source: string, persistentLoad: (pid: PyValue) => PyValue, at?: { pos: number; what: string }): PyValue {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.byteLength;
  let pos = at?.pos ?? 0;
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  const fail = (msg: string): never => {
    throw new PthError(`${source}: malformed pickle (${at?.what ?? 'data.pkl'}, byte ${pos}): ${msg}`);
  };
  const need = (k: number): number => {
    if (k < 0 || pos + k > n) fail(`needs ${k} more bytes but the pickle ends`);
    const p = pos;
    pos += k;
    return p;
  };
  /** The next k bytes (a view), after checking they are there. */
  const take = (k: number): Uint8Array => {
    const p = need(k);
    return data.subarray(p, p + k);
  };
  const readLine = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated line');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    if (metastack.length === 0) fail('no MARK on the stack');
    const items = stack;
    stack = metastack.pop()!;
    return items;
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo entry ${i} does not exist`);
    return memo.get(i)!;
  };
  const len64 = (p: number): number => {
    const v = dv.getBigUint64(p, true);
    if (v > BigInt(n)) fail(`length ${v} exceeds the pickle`);
    return Number(v);
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(q)) {
      throw new PthError(
        `Refusing to load ${source}: the pickle references ${q}, which a state_dict never needs (only tensors are loaded; nothing is executed)`,
      );
    }
    return new PyGlobal(module, name);
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on a ${typeName(d)}`);
    if (items.length % 2) fail('odd number of items for SETITEMS');
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (k !== null && typeof k === 'object') fail(`unsupported dict key of type ${typeName(k)}`);
      (d as PyDict).map.set(k, items[i + 1]);
    }
  };
  const append = (l: PyValue, items: PyValue[]): void => {
    if (Array.isArray(l)) l.push(...items);
    else if (l instanceof PySet) l.items.push(...items);
    else fail(`APPEND(S)/ADDITEMS on a ${typeName(l)}`);
  };
  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail(`REDUCE on a ${typeName(fn)}`);
    if (!(args instanceof PyTuple)) return fail(`REDUCE arguments are a ${typeName(args)}, not a tuple`);
    return callAllowed(fn, args.items, source);
  };

  for (;;) {
    if (pos >= n) fail('the pickle ends without STOP');
    const opPos = pos;
    const op = data[pos++];
    switch (op) {
      case 0x80: {
        // PROTO
        const p = data[need(1)];
        if (p > 5) fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case 0x95:
        need(8);
        break; // FRAME: framing is only a hint
      case 0x2e: {
        // STOP
        const v = pop();
        if (at) at.pos = pos;
        return v;
      }
      case 0x28:
        metastack.push(stack);
        stack = [];
        break; // MARK
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        stack.push(top());
        break; // DUP
      case 0x7d:
        stack.push(new PyDict());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push(new PyTuple([]));
        break; // EMPTY_TUPLE
      case 0x8f:
        stack.push(new PySet());
        break; // EMPTY_SET
      case 0x74: {
        const t = new PyTuple(popMark());
        stack.push(t);
        break;
      } // TUPLE
      case 0x85:
        stack.push(new PyTuple([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      } // TUPLE3
      case 0x6c: {
        const l = popMark();
        stack.push(l);
        break;
      } // LIST
      case 0x64: {
        const items = popMark();
        const d = new PyDict();
        setItems(d, items);
        stack.push(d);
        break;
      } // DICT
      case 0x91: {
        const items = popMark();
        const s = new PySet();
        s.items.push(...items);
        stack.push(s);
        break;
      } // FROZENSET
      case 0x61: {
        const v = pop();
        append(top(), [v]);
        break;
      } // APPEND
      case 0x65:
      case 0x90: {
        const items = popMark();
        append(top(), items);
        break;
      } // APPENDS, ADDITEMS
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      } // SETITEMS
      case 0x58:
        stack.push(utf8.decode(take(dv.getUint32(need(4), true))));
        break; // BINUNICODE
      case 0x8c:
        stack.push(utf8.decode(take(data[need(1)])));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(utf8.decode(take(len64(need(8)))));
        break; // BINUNICODE8
      case 0x56: {
        const end = data.indexOf(0x0a, pos);
        if (end < 0) fail('unterminated UNICODE');
        stack.push(decodeRawUnicodeEscape(data.subarray(pos, end)));
        pos = end + 1;
        break;
      } // UNICODE
      case 0x55:
        stack.push(latin1.decode(take(data[need(1)])));
        break; // SHORT_BINSTRING
      case 0x54:
        stack.push(latin1.decode(take(dv.getInt32(need(4), true))));
        break; // BINSTRING
      case 0x43:
        stack.push(take(data[need(1)]).slice());
        break; // SHORT_BINBYTES
      case 0x42:
        stack.push(take(dv.getUint32(need(4), true)).slice());
        break; // BINBYTES
      case 0x8e:
        stack.push(take(len64(need(8))).slice());
        break; // BINBYTES8
      case 0x4a:
        stack.push(dv.getInt32(need(4), true));
        break; // BININT
      case 0x4b:
        stack.push(data[need(1)]);
        break; // BININT1
      case 0x4d:
        stack.push(dv.getUint16(need(2), true));
        break; // BININT2
      case 0x8a:
        stack.push(intFromLE(take(data[need(1)])));
        break; // LONG1
      case 0x8b:
        stack.push(intFromLE(take(dv.getInt32(need(4), true))));
        break; // LONG4
      case 0x49: {
        // INT (text; also I00/I01 booleans)
        const s = readLine();
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else if (/^[-+]?\d+$/.test(s)) {
          const b = BigInt(s);
          stack.push(b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
        } else fail(`bad INT ${JSON.stringify(s)}`);
        break;
      }
      case 0x4c: {
        // LONG (text)
        const s = readLine().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(s)) fail(`bad LONG ${JSON.stringify(s)}`);
        const b = BigInt(s);
        stack.push(b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
        break;
      }
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x47:
        stack.push(dv.getFloat64(need(8), false));
        break; // BINFLOAT (big-endian)
      case 0x46: {
        const s = readLine();
        const v = Number(s);
        if (Number.isNaN(v) && !/nan/i.test(s)) fail(`bad FLOAT ${JSON.stringify(s)}`);
        stack.push(v);
        break;
      } // FLOAT
      case 0x71:
        memo.set(data[need(1)], top());
        break; // BINPUT
      case 0x72:
        memo.set(dv.getUint32(need(4), true), top());
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x70: {
        const s = readLine();
        if (!/^\d+$/.test(s)) fail('bad PUT');
        memo.set(Number(s), top());
        break;
      } // PUT
      case 0x68:
        stack.push(memoGet(data[need(1)]));
        break; // BINGET
      case 0x6a:
        stack.push(memoGet(dv.getUint32(need(4), true)));
        break; // LONG_BINGET
      case 0x67: {
        const s = readLine();
        if (!/^\d+$/.test(s)) fail('bad GET');
        stack.push(memoGet(Number(s)));
        break;
      } // GET
      case 0x63: {
        const module = readLine();
        const name = readLine();
        stack.push(resolveGlobal(module, name));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        const args = pop();
        const fn = pop();
        stack.push(reduce(fn, args));
        break;
      } // REDUCE
      case 0x62: {
        // BUILD: object state (e.g. the `_metadata` of a state_dict) is not needed; drop it.
        pop();
        top();
        break;
      }
      case 0x51: {
        const pid = pop();
        stack.push(persistentLoad(pid));
        break;
      } // BINPERSID
      default: {
        const name = OPNAMES[op];
        const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : '';
        throw new PthError(
          `Refusing to load ${source}: unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${ch}${name ? ` (${name})` : ''} at byte ${opPos} of data.pkl; a torch.save state_dict never uses it`,
        );
      }
    }
  }
}

function asIndex(v: PyValue, what: string, source: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new PthError(
      `${source}: ${what} must be a non-negative integer, got ${typeof v === 'bigint' || typeof v === 'number' ? String(v) : typeof v === 'string' ? JSON.stringify(v) : `a ${typeName(v)}`}`,
    );
  return v;
}

function asIntTuple(v: PyValue, what: string, source: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (!items) throw new PthError(`${source}: ${what} must be a tuple of integers, got a ${typeName(v)}`);
  return items.map((x, i) => asIndex(x, `${what}[${i}]`, source));
}

function rebuildTensor(args: PyValue[], source: string): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new PthError(`${source}: tensor rebuilt from a ${typeName(storage)}, not a storage`);
  const shape = asIntTuple(size, 'tensor size', source);
  const strides = asIntTuple(stride, 'tensor stride', source);
  if (shape.length !== strides.length) throw new PthError(`${source}: tensor size [${shape}] and stride [${strides}] differ in length`);
  storage.refs++;
  return new TensorRef(storage, asIndex(offset, 'storage offset', source), shape, strides);
}

function callAllowed(fn: PyGlobal, args: PyValue[], source: string): PyValue {
  switch (fn.qualname) {
    case 'collections.OrderedDict': {
      const d = new PyDict();
      const init = args[0];
      if (args.length > 1) break;
      if (init !== undefined && init !== null) {
        const pairs = Array.isArray(init) ? init : init instanceof PyTuple ? init.items : null;
        if (!pairs) break;
        for (const p of pairs) {
          const kv = p instanceof PyTuple ? p.items : Array.isArray(p) ? p : null;
          if (!kv || kv.length !== 2 || (kv[0] !== null && typeof kv[0] === 'object')) throw new PthError(`${source}: bad OrderedDict item`);
          d.map.set(kv[0], kv[1]);
        }
      }
      return d;
    }
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      if (args.length < 4) break;
      return rebuildTensor(args, source);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      if (!(args[0] instanceof TensorRef)) break;
      return args[0];
    case 'torch._tensor._rebuild_from_type_v2': {
      // (func, type, args, state): func must itself be an allowed rebuild function.
      const [func, , inner] = args;
      if (!(func instanceof PyGlobal) || !(inner instanceof PyTuple)) break;
      const v = callAllowed(func, inner.items, source);
      if (!(v instanceof TensorRef)) break;
      return v;
    }
    case 'builtins.set':
    case 'builtins.frozenset':
    case '__builtin__.set': {
      const s = new PySet();
      const init = args[0];
      if (Array.isArray(init)) s.items.push(...init);
      else if (init instanceof PyTuple) s.items.push(...init.items);
      return s;
    }
  }
  throw new PthError(`${source}: unsupported call of ${fn.qualname} with ${args.length} argument(s) (${args.map(typeName).join(', ')}) in the pickle`);
}

// ---------------------------------------------------------------------------------------------
// Tensor materialisation.

let halfTable: Float32Array | null = null;
function getHalfTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    t[h] = e === 0 ? s * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + f / 1024);
  }
  return (halfTable = t);
}

/** Elements [lo, hi) of a storage as float32: a view when possible, else converted. */
function storageToFloat32(bytes: Uint8Array, dtype: DtypeInfo, lo: number, hi: number, bigEndian: boolean): { data: Float32Array; view: boolean } {
  const count = hi - lo;
  const es = dtype.size;
  let b = bytes.subarray(lo * es, hi * es);
  let fresh = false;
  if (bigEndian && es > 1) {
    const sw = new Uint8Array(b.byteLength);
    for (let i = 0; i < b.byteLength; i += es) for (let j = 0; j < es; j++) sw[i + j] = b[i + es - 1 - j];
    b = sw;
    fresh = true;
  }
  const aligned = b.byteOffset % es === 0;
  if (dtype.name === 'float32') {
    if (aligned) return { data: new Float32Array(b.buffer, b.byteOffset, count), view: !fresh };
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(b);
    return { data: out, view: false };
  }
  // Other dtypes: typed views when aligned (copy the bytes first otherwise), then convert.
  const src = aligned ? b : b.slice();
  const out = new Float32Array(count);
  switch (dtype.name) {
    case 'float64':
      out.set(new Float64Array(src.buffer, src.byteOffset, count));
      break;
    case 'float16': {
      const t = getHalfTable();
      const u = new Uint16Array(src.buffer, src.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = t[u[i]];
      break;
    }
    case 'bfloat16': {
      const u = new Uint16Array(src.buffer, src.byteOffset, count);
      const o = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) o[i] = u[i] << 16;
      break;
    }
    case 'int64': {
      const u = new BigInt64Array(src.buffer, src.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = Number(u[i]);
      break;
    }
    case 'int32':
      out.set(new Int32Array(src.buffer, src.byteOffset, count));
      break;
    case 'int16':
      out.set(new Int16Array(src.buffer, src.byteOffset, count));
      break;
    case 'int8':
      out.set(new Int8Array(src.buffer, src.byteOffset, count));
      break;
    case 'uint8':
      out.set(src);
      break;
    case 'bool':
      for (let i = 0; i < count; i++) out[i] = src[i] ? 1 : 0;
      break;
    default:
      throw new Error(`unreachable dtype ${dtype.name}`);
  }
  return { data: out, view: false };
}

function materialise(name: string, t: TensorRef, bytes: Uint8Array, bigEndian: boolean, source: string): Float32Array {
  const { storage, offset, shape, stride } = t;
  const es = storage.dtype.size;
  const storageNumel = Math.floor(bytes.byteLength / es);
  let numel = 1;
  for (const d of shape) numel *= d;
  if (numel === 0) return new Float32Array(0);
  if (!Number.isSafeInteger(numel) || numel > 2 ** 32) throw new PthError(`${source}: tensor ${name} of shape [${shape}] is too large`);
  let maxIndex = offset;
  for (let i = 0; i < shape.length; i++) maxIndex += (shape[i] - 1) * stride[i];
  if (maxIndex >= storageNumel) {
    throw new PthError(
      `${source}: tensor ${name} (shape [${shape}], stride [${stride}], offset ${offset}, ${storage.dtype.name}) needs ${maxIndex + 1} elements but its storage data/${storage.key} holds only ${storageNumel} (${bytes.byteLength} bytes); the file is corrupt`,
    );
  }
  let contiguous = true;
  for (let i = shape.length - 1, expect = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) {
      contiguous = false;
      break;
    }
    expect *= shape[i];
  }
  if (contiguous) {
    const { data, view } = storageToFloat32(bytes, storage.dtype, offset, offset + numel, bigEndian);
    // Several tensors on one storage: give each its own copy so in-place updates stay separate.
    return view && storage.refs > 1 ? data.slice() : data;
  }
  // Strided (e.g. transposed) tensor: convert the touched range, then gather row-major.
  const { data: src } = storageToFloat32(bytes, storage.dtype, offset, maxIndex + 1, bigEndian);
  const out = new Float32Array(numel);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const last = nd - 1;
  const lastSize = shape[last];
  const lastStride = stride[last];
  let base = 0;
  for (let o = 0; o < numel;) {
    for (let j = 0, s = base; j < lastSize; j++, s += lastStride) out[o++] = src[s];
    // Advance the outer indices.
    let d = last - 1;
    while (d >= 0) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= idx[d] * stride[d];
      idx[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Archive handling.

function findStateDict(root: PyValue, source: string, opts: PthOptions): Array<[string, TensorRef]> {
  if (!(root instanceof PyDict)) throw new PthError(`${source}: the pickle holds a ${typeName(root)}, not a dict of tensors (a state_dict)`);
  const tensorsOf = (d: PyDict): Array<[string, TensorRef]> => {
    const out: Array<[string, TensorRef]> = [];
    for (const [k, v] of d.map)
      if (v instanceof TensorRef) {
        if (typeof k !== 'string') throw new PthError(`${source}: state_dict key ${String(k)} is not a string`);
        out.push([k, v]);
      }
    return out;
  };
  if (opts.entry !== undefined) {
    const sub = root.map.get(opts.entry);
    if (!(sub instanceof PyDict))
      throw new PthError(`${source}: has no dict entry ${JSON.stringify(opts.entry)} (keys: ${[...root.map.keys()].map(String).join(', ')})`);
    return tensorsOf(sub);
  }
  const direct = tensorsOf(root);
  if (direct.length) return direct;
  const containers: Array<[string, PyDict]> = [];
  for (const [k, v] of root.map) if (v instanceof PyDict && tensorsOf(v).length) containers.push([String(k), v]);
  if (containers.length === 1) return tensorsOf(containers[0][1]);
  if (containers.length > 1) {
    throw new PthError(`${source}: holds several dicts of tensors (${containers.map((c) => c[0]).join(', ')}); choose one with the \`entry\` option`);
  }
  if (root.map.size === 0) return [];
  throw new PthError(`${source}: holds no tensors (keys: ${[...root.map.keys()].slice(0, 10).map(String).join(', ')})`);
}

/** Random access to the archive: whole entries (decoded, CRC-checked) and, for files, raw ranges. */
interface Archive {
  source: string;
  entries: Map<string, ZipEntry>;
  entryData(e: ZipEntry): Uint8Array;
  /** Raw bytes of a STORED entry from `byteOffset` into `into` (files only). */
  readInto?(e: ZipEntry, byteOffset: number, into: Uint8Array): void;
}

function zipError(e: unknown): never {
  if (e instanceof ZipFormatError) throw new PthError(`Cannot load ${e.message}`);
  throw e;
}

function indexArchive(ar: Archive, opts: PthOptions): Map<string, LazyTensor> {
  const { source, entries } = ar;
  // The pickle sits at `<folder>/data.pkl`; the folder's name varies.
  let pkl: ZipEntry | undefined;
  for (const e of entries.values()) {
    if (e.name === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(e.name)) {
      pkl = e;
      break;
    }
  }
  if (!pkl) {
    const names = [...entries.keys()];
    throw new PthError(
      `Cannot load ${source}: the zip archive has no <folder>/data.pkl, so it is not a PyTorch checkpoint (entries: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''})`,
    );
  }
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const entryData = (e: ZipEntry): Uint8Array => {
    try {
      return ar.entryData(e);
    } catch (err) {
      return zipError(err);
    }
  };
  let bigEndian = false;
  const bo = entries.get(`${prefix}byteorder`);
  if (bo) {
    const s = latin1.decode(entryData(bo)).trim();
    if (s === 'big') bigEndian = true;
    else if (s !== 'little') throw new PthError(`${source}: unknown byteorder ${JSON.stringify(s)}`);
  }

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PyValue): PyValue => {
    const t = pid instanceof PyTuple ? pid.items : null;
    if (!t || t[0] !== 'storage' || t.length < 5)
      throw new PthError(`${source}: unsupported persistent id in the pickle (${typeName(pid)}${t ? ` ${JSON.stringify(t[0])}` : ''})`);
    const [, type, key, location, numel] = t;
    if (!(type instanceof PyGlobal) || type.module !== 'torch' || !STORAGE_TYPES[type.name])
      throw new PthError(`${source}: unsupported storage type ${type instanceof PyGlobal ? type.qualname : typeName(type)}`);
    if (typeof key !== 'string') throw new PthError(`${source}: storage key is a ${typeName(key)}, not a string`);
    const dtype = STORAGE_TYPES[type.name];
    const prev = storages.get(key);
    if (prev) {
      if (prev.dtype !== dtype) throw new PthError(`${source}: storage ${key} is used as both ${prev.dtype.name} and ${dtype.name}`);
      return prev;
    }
    const s = new StorageRef(key, dtype, typeof location === 'string' ? location : '?', asIndex(numel, `numel of storage ${key}`, source));
    storages.set(key, s);
    return s;
  };
  const root = unpickle(entryData(pkl), source, persistentLoad);
  const list = findStateDict(root, source, opts);

  const out = new Map<string, LazyTensor>();
  for (const [name, t] of list) {
    const s = t.storage;
    const e = entries.get(`${prefix}data/${s.key}`);
    if (!e)
      throw new PthError(
        `Cannot load ${source}: tensor ${name} needs storage ${prefix}data/${s.key}, which the archive lacks (truncated or incomplete checkpoint)`,
      );
    if (e.size < s.numel * s.dtype.size) {
      throw new PthError(
        `${source}: storage ${prefix}data/${s.key} holds ${e.size} bytes but the pickle declares ${s.numel} ${s.dtype.name} elements (${s.numel * s.dtype.size} bytes); the file is corrupt`,
      );
    }
    out.set(name, { shape: t.shape.slice(), dtype: s.dtype.name, read: (into) => readTensor(ar, name, t, e, bigEndian, into) });
  }
  return out;
}

function readTensor(ar: Archive, name: string, t: TensorRef, e: ZipEntry, bigEndian: boolean, into?: Float32Array): Float32Array {
  const { storage, offset, shape, stride } = t;
  let numel = 1;
  for (const d of shape) numel *= d;
  if (into && into.length !== numel) throw new Error(`internal: tensor ${name} has ${numel} values, not ${into.length}`);
  let contiguous = true;
  for (let i = shape.length - 1, expect = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) {
      contiguous = false;
      break;
    }
    expect *= shape[i];
  }
  const es = storage.dtype.size;
  // Fast path: a little-endian float32 tensor in a STORED entry is read straight into its final array.
  if (ar.readInto && e.method === 0 && storage.dtype.name === 'float32' && !bigEndian && contiguous && numel > 0) {
    if (!Number.isSafeInteger(numel) || numel > 2 ** 32) throw new PthError(`${ar.source}: tensor ${name} of shape [${shape}] is too large`);
    const storageNumel = Math.floor(e.size / es);
    if (offset + numel > storageNumel) {
      throw new PthError(
        `${ar.source}: tensor ${name} (shape [${shape}], stride [${stride}], offset ${offset}, ${storage.dtype.name}) needs ${offset + numel} elements but its storage data/${storage.key} holds only ${storageNumel} (${e.size} bytes); the file is corrupt`,
      );
    }
    const out = into ?? new Float32Array(numel);
    const bytes = new Uint8Array(out.buffer, out.byteOffset, numel * 4);
    ar.readInto(e, offset * 4, bytes);
    // the CRC covers the whole entry: checked when the tensor is the whole storage (the usual case)
    if (offset === 0 && numel * 4 === e.size) {
      try {
        zipCheckCrc(bytes, e, ar.source);
      } catch (err) {
        zipError(err);
      }
    }
    return out;
  }
  let bytes: Uint8Array;
  try {
    bytes = ar.entryData(e);
  } catch (err) {
    return zipError(err);
  }
  const data = materialise(name, t, bytes, bigEndian, ar.source);
  if (into) {
    into.set(data);
    return into;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// The legacy format (torch.save before 1.6, or `_use_new_zipfile_serialization=False`): five
// pickles in a row (magic number, protocol version, system info, the state dict with persistent ids
// ('storage', type, key, location, numel, view), the sorted storage keys), then each storage as an
// int64 element count followed by its raw bytes.

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** True when `head` (the file's first bytes) starts like a legacy torch.save file. */
export function isLegacyPth(head: Uint8Array): boolean {
  return head.byteLength >= 4 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5 && head[2] === 0x8a && head[3] === 0x0a;
}

function indexLegacy(
  size: number,
  read: (pos: number, len: number) => Uint8Array,
  readInto: Archive['readInto'],
  source: string,
  opts: PthOptions,
): Map<string, LazyTensor> {
  const what = `${source}: legacy-format (pre-1.6 torch.save) checkpoint`;
  // The pickles are small; read a prefix and grow it until they all parse.
  let chunkLen = Math.min(size, 1 << 20);
  for (;;) {
    const head = read(0, chunkLen);
    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: PyValue): PyValue => {
      const t = pid instanceof PyTuple ? pid.items : null;
      if (!t || t[0] !== 'storage' || t.length < 5) throw new PthError(`${what}: unsupported persistent id in the pickle`);
      const [, type, key, location, numel, view] = t;
      if (!(type instanceof PyGlobal) || type.module !== 'torch' || !STORAGE_TYPES[type.name])
        throw new PthError(`${what}: unsupported storage type ${type instanceof PyGlobal ? type.qualname : typeName(type)}`);
      if (typeof key !== 'string') throw new PthError(`${what}: storage key is a ${typeName(key)}, not a string`);
      if (view !== undefined && view !== null)
        throw new PthError(`${what}: storage ${key} is a view into another storage, which is not supported; re-save it with torch >= 1.6`);
      const dtype = STORAGE_TYPES[type.name];
      const prev = storages.get(key);
      if (prev) return prev;
      const st = new StorageRef(key, dtype, typeof location === 'string' ? location : '?', asIndex(numel, `numel of storage ${key}`, source));
      storages.set(key, st);
      return st;
    };
    const at = { pos: 0, what: 'legacy pickle' };
    try {
      const magic = unpickle(head, source, () => null, at);
      if (magic !== LEGACY_MAGIC && magic !== Number(LEGACY_MAGIC)) throw new PthError(`${what}: wrong magic number`);
      const version = unpickle(head, source, () => null, at);
      if (version !== 1001) throw new PthError(`${what}: unsupported protocol version ${String(version)}`);
      const sys = unpickle(head, source, () => null, at);
      if (sys instanceof PyDict && sys.map.get('little_endian') === false) throw new PthError(`${what}: big-endian legacy files are not supported`);
      const root = unpickle(head, source, persistentLoad, at);
      const keys = unpickle(head, source, () => null, at);
      if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new PthError(`${what}: the storage key list is malformed`);
      // storage records: int64 element count, then the bytes
      const entries = new Map<string, ZipEntry>();
      let pos = at.pos;
      for (const key of keys as string[]) {
        const st = storages.get(key);
        if (!st) throw new PthError(`${what}: storage ${key} is listed but no tensor uses it`);
        if (pos + 8 > size) throw new PthError(`${what} is truncated: storage ${key} is missing`);
        const b8 = read(pos, 8);
        const count = Number(new DataView(b8.buffer, b8.byteOffset, 8).getBigInt64(0, true));
        const bytes = count * st.dtype.size;
        if (!(count >= 0) || pos + 8 + bytes > size)
          throw new PthError(`${what} is truncated: storage ${key} needs bytes up to ${pos + 8 + bytes} but the file has ${size}`);
        entries.set(key, {
          name: `storage ${key}`,
          method: 0,
          flags: 0,
          crc32: 0,
          compressedSize: bytes,
          size: bytes,
          localHeaderOffset: pos,
          dataOffset: pos + 8,
        });
        pos += 8 + bytes;
      }
      const ar: Archive = { source, entries, entryData: (e) => read(e.dataOffset, e.size), readInto };
      const out = new Map<string, LazyTensor>();
      for (const [name, t] of findStateDict(root, source, opts)) {
        const e = entries.get(t.storage.key);
        if (!e) throw new PthError(`${what}: tensor ${name} needs storage ${t.storage.key}, which the file lacks`);
        if (e.size < t.storage.numel * t.storage.dtype.size)
          throw new PthError(
            `${what}: storage ${t.storage.key} holds ${e.size} bytes but the pickle declares ${t.storage.numel} ${t.storage.dtype.name} elements; the file is corrupt`,
          );
        out.set(name, { shape: t.shape.slice(), dtype: t.storage.dtype.name, read: (into) => readTensor(ar, name, t, e, false, into) });
      }
      return out;
    } catch (e) {
      // the pickles run past the prefix read so far: read more
      if (e instanceof PthError && /the pickle ends|needs \d+ more bytes/.test(e.message) && chunkLen < size) {
        chunkLen = Math.min(size, chunkLen * 4);
        continue;
      }
      if (e instanceof PthError && /malformed pickle/.test(e.message) && !e.message.includes('legacy'))
        throw new PthError(e.message.replace(`${source}:`, `${what}:`));
      throw e;
    }
  }
}

/** Parse a PyTorch zip checkpoint held in memory. Float32 tensors may alias `buf`. */
export function parsePth(buf: Uint8Array, source = 'checkpoint', opts: PthOptions = {}): Map<string, RawTensor> {
  if (isLegacyPth(buf)) {
    const index = indexLegacy(buf.byteLength, (pos, len) => buf.subarray(pos, pos + len), undefined, source, opts);
    const out = new Map<string, RawTensor>();
    for (const [name, t] of index) out.set(name, { shape: t.shape, data: t.read() });
    return out;
  }
  let entries: Map<string, ZipEntry>;
  try {
    entries = readZipDirectory(buf, source);
  } catch (e) {
    return zipError(e);
  }
  const index = indexArchive({ source, entries, entryData: (e) => zipEntryData(buf, e, source) }, opts);
  const out = new Map<string, RawTensor>();
  for (const [name, t] of index) out.set(name, { shape: t.shape, data: t.read() });
  return out;
}

/** An open checkpoint file: tensor names, shapes and readers; `close()` releases the file. */
export interface PthFile {
  tensors: Map<string, LazyTensor>;
  close(): void;
}

/**
 * Open a PyTorch checkpoint without reading its tensors: the zip directory and the pickle are read
 * (a few KB); each tensor's `read()` then reads its bytes from the file, straight into the target
 * Float32Array when it is a contiguous little-endian float32 tensor (no intermediate copy).
 */
export function openPth(path: string, opts: PthOptions = {}): PthFile {
  return openForReading(
    path,
    () => new PthError(`${path}: unexpected end of file while reading (truncated?)`),
    (f) => {
      const read = (pos: number, len: number): Uint8Array => {
        const b = new Uint8Array(Math.max(0, Math.min(len, f.size - pos)));
        f.read(b, pos);
        return b;
      };
      const readInto = (e: ZipEntry, byteOffset: number, into: Uint8Array) => {
        if (!f.isOpen) throw new Error(`internal: ${path} was closed`);
        f.read(into, e.dataOffset + byteOffset);
      };
      if (isLegacyPth(read(0, 4))) return { tensors: indexLegacy(f.size, read, readInto, path, opts) };
      let entries: Map<string, ZipEntry>;
      try {
        entries = readZipDirectoryFrom(f.size, read, path);
      } catch (e) {
        return zipError(e);
      }
      const ar: Archive = {
        source: path,
        entries,
        entryData: (e) => {
          if (!f.isOpen) throw new Error(`internal: ${path} was closed`);
          return zipEntryDecode(read(e.dataOffset, e.compressedSize), e, path);
        },
        readInto,
      };
      return { tensors: indexArchive(ar, opts) };
    },
  );
}

/**
 * Load the tensors of a PyTorch checkpoint (`torch.save(model.state_dict())`), in state_dict
 * order, as float32. Never executes anything from the file. Each tensor is read from the file into
 * its own array (the file is never held in memory whole).
 */
export function readPth(path: string, opts: PthOptions = {}): Map<string, RawTensor> {
  const f = openPth(path, opts);
  try {
    const out = new Map<string, RawTensor>();
    for (const [name, t] of f.tensors) out.set(name, { shape: t.shape, data: t.read() });
    return out;
  } finally {
    f.close();
  }
}
