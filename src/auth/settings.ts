/**
 * The `auth` section of the config: who may call the gateway. Its keys are checked by convict like
 * every other section (`auth.<key>`), then the credential material is read: the API keys listed in
 * the config and in `api_keys_file`, and the JSON Web Key Set of `jwt_jwks_file`. Both files are
 * read again on every reload (SIGUSR1), so a key removed from a file is refused from the next request.
 *
 * Errors name the file, the key and the entry's position (and its id, which is a name), never a
 * hash, a key or other text of a file.
 */
import { ConfigError } from '../errors.js';
import type { YamlMapping } from '../config/read-file.js';
import { readYamlFile } from '../config/read-file.js';
import { ANONYMOUS } from './caller.js';

/** Schema node with the config's `reloadable` flag (see src/config/schema.ts). */
interface Node<T> {
  doc: string;
  format: ((v: unknown) => void) | StringConstructor;
  default: T;
  reloadable: boolean;
}

/** Key ids and role names: text a record, a metric label or a SQL param can carry as it is (no comma, no space). */
export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$/;
export const ROLE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;
/** A claim name listed in sql_claims becomes the SQL param `_claim_<name>`. */
export const CLAIM_NAME = /^[A-Za-z][A-Za-z0-9_]{0,40}$/;
/** A claim path: names separated by dots (`realm_access.roles`). */
export const CLAIM_PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*){0,7}$/;
/** Algorithms a token may be signed with (jose verifies each); `none` is never among them. */
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
/** Shortest HMAC secret accepted: an HS256 key as long as its hash (RFC 7518 3.2). */
export const MIN_HMAC_BYTES = 32;

export interface ApiKeyEntry {
  id: string;
  /** SHA-256 of the whole key, lower-case hex. */
  sha256: string;
  roles: readonly string[];
  /** Date.now() past which the key is refused; undefined: never. */
  expiresAt?: number;
  /** Claims an endpoint can read as `_claim_<name>` or in request.jwt.claims (a tenant, a database role). */
  claims: Readonly<Record<string, string | number | boolean>>;
}

export interface JsonWebKey {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  [k: string]: unknown;
}

export interface AuthSettings {
  required: boolean;
  api_keys_file: string;
  /** Inline entries of the config and those of api_keys_file, together (ids unique across both). */
  api_keys: readonly ApiKeyEntry[];
  jwt_jwks_file: string;
  /** The keys of jwt_jwks_file (public keys, and `oct` secrets for HS*). */
  jwks: readonly JsonWebKey[];
  jwt_jwks_url: string;
  jwt_jwks_cache: number;
  jwt_issuer: readonly string[];
  jwt_audience: readonly string[];
  jwt_algorithms: readonly string[];
  jwt_clock_skew: number;
  jwt_roles_claim: string;
  jwt_cache_size: number;
  jwt_cache_seconds: number;
  sql_claims: readonly string[];
  metrics_roles: readonly string[];
  docs_roles: readonly string[];
}

function strictBoolean(v: unknown): void {
  if (typeof v !== 'boolean') throw new Error('must be true or false');
}
function seconds(v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error('must be a number of seconds >= 0');
}
function nonNegativeInt(v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error('must be a whole number >= 0');
}
function namesMatching(re: RegExp, what: string, key: string) {
  return (v: unknown) => {
    if (!Array.isArray(v)) throw new Error(`must be a list of ${what}`);
    v.forEach((s, i) => {
      if (typeof s !== 'string' || !re.test(s)) throw new Error(`${key}[${i}] is not ${what.replace(/s$/, '')} (${re})`);
    });
  };
}
/** A list of non-empty strings, or one string (an issuer or audience is often a single URL). */
function oneOrMore(v: unknown): void {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0)) throw new Error('must be a text or a list of texts');
}
function jwksUrl(v: unknown): void {
  if (v === '') return;
  let url: URL;
  try {
    url = new URL(String(v));
  } catch {
    throw new Error('must be an https:// URL');
  }
  // Keys fetched in the clear could be replaced on the way; plain http only to this machine.
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new Error('must be an https:// URL (http:// only to a loopback address)');
}

export const authSchema: { [K in keyof Omit<AuthSettings, 'jwks'>]: Node<unknown> } = {
  required: {
    doc: 'Refuse to start without a credential source (API keys or JWT keys). Without it, a gateway on a non-loopback address with resources and no credential source starts with a WARNING.',
    format: strictBoolean,
    default: false,
    reloadable: false,
  },
  api_keys_file: {
    doc: 'YAML file whose `keys:` list holds API key entries ({id, sha256, roles, expires, claims}); re-read on SIGUSR1. Relative to the working directory; empty = none.',
    format: String,
    default: '',
    reloadable: true,
  },
  api_keys: {
    doc: 'API key entries in the config itself ({id, sha256, roles, expires, claims}): only the SHA-256 of each key, never the key.',
    format: (v: unknown) => {
      if (!Array.isArray(v)) throw new Error('must be a list of key entries');
    },
    default: [],
    reloadable: true,
  },
  jwt_jwks_file: {
    doc: 'JSON Web Key Set file ({"keys": [...]}) with the public keys tokens are verified with, and `oct` keys for HS256; re-read on SIGUSR1. Empty = none.',
    format: String,
    default: '',
    reloadable: true,
  },
  jwt_jwks_url: {
    doc: 'JSON Web Key Set URL (https), fetched when first needed, kept jwt_jwks_cache seconds, fetched again at once (at most every 30 s) for a token naming an unknown kid, and dropped on SIGUSR1. Empty = none.',
    format: jwksUrl,
    default: '',
    reloadable: true,
  },
  jwt_jwks_cache: { doc: 'Seconds a fetched jwt_jwks_url set is used before it is fetched again.', format: seconds, default: 600, reloadable: true },
  jwt_issuer: { doc: 'Accepted `iss` of tokens (required with any JWT key source).', format: oneOrMore, default: [], reloadable: true },
  jwt_audience: { doc: 'Accepted `aud` of tokens: a token must name one of these (required with any JWT key source).', format: oneOrMore, default: [], reloadable: true },
  jwt_algorithms: {
    doc: `Algorithms a token may be signed with; each key is used only with the algorithms of its type. From ${JWT_ALGORITHMS.join(', ')}.`,
    format: (v: unknown) => {
      if (!Array.isArray(v) || v.length === 0) throw new Error('must be a list of algorithms');
      v.forEach((a, i) => {
        if (!JWT_ALGORITHMS.includes(a as (typeof JWT_ALGORITHMS)[number])) throw new Error(`jwt_algorithms[${i}] is not one of ${JWT_ALGORITHMS.join(', ')}`);
      });
    },
    default: ['HS256', 'RS256', 'ES256', 'EdDSA'],
    reloadable: true,
  },
  jwt_clock_skew: { doc: 'Seconds of clock difference allowed when exp and nbf are checked.', format: seconds, default: 30, reloadable: true },
  jwt_roles_claim: {
    doc: 'Claim path of the roles in a token (a list of names, or one text of names separated by spaces), e.g. roles or realm_access.roles.',
    format: (v: unknown) => {
      if (typeof v !== 'string' || !CLAIM_PATH.test(v)) throw new Error('must be a claim path (names separated by dots)');
    },
    default: 'roles',
    reloadable: true,
  },
  jwt_cache_size: { doc: 'Verified tokens kept, so a token seen again is not verified again (0 = none).', format: nonNegativeInt, default: 1000, reloadable: true },
  jwt_cache_seconds: {
    doc: 'Most seconds a verified token is kept (never past its exp); a reload empties the cache.',
    format: seconds,
    default: 300,
    reloadable: true,
  },
  sql_claims: {
    doc: 'Claims a declared statement may bind as :_claim_<name> (a top-level claim of the token, or of the API key entry).',
    format: namesMatching(CLAIM_NAME, 'claim names', 'sql_claims'),
    default: [],
    reloadable: false,
  },
  metrics_roles: { doc: 'Roles allowed to read /metrics (empty = as before: metrics_allow and basic auth only).', format: namesMatching(ROLE_NAME, 'role names', 'metrics_roles'), default: [], reloadable: true },
  docs_roles: { doc: 'Roles allowed to read /docs (empty = everyone who can reach it).', format: namesMatching(ROLE_NAME, 'role names', 'docs_roles'), default: [], reloadable: true },
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Key ids no caller may take: records and metrics use them for requests without a caller. */
const RESERVED_IDS = new Set([ANONYMOUS, 'other']);
const ENTRY_KEYS = new Set(['id', 'sha256', 'roles', 'expires', 'claims']);
/** Claims an entry may not set: `sub` is its id and `roles` its roles. */
const ENTRY_OWN_CLAIMS = new Set(['sub', 'roles']);

/** An ISO 8601 date or date-time; a date alone means its start, UTC. */
function parseExpiry(v: unknown): number | undefined {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) return undefined;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Checks API key entries; `where` names them in errors (`auth.api_keys` or `<file>: keys`). */
export function parseKeyEntries(list: unknown[], where: string, problems: string[]): ApiKeyEntry[] {
  const out: ApiKeyEntry[] = [];
  list.forEach((raw, i) => {
    const at = `${where}[${i}]`;
    if (!isObj(raw)) {
      problems.push(`${at}: must be a mapping {id, sha256, roles, expires, claims}`);
      return;
    }
    const id = raw.id;
    const name = typeof id === 'string' && KEY_ID.test(id) ? `${at} (${id})` : at;
    const before = problems.length;
    const bad = (key: string, reason: string) => problems.push(`${name}.${key}: ${reason}`);
    const unknown = Object.keys(raw).filter((k) => !ENTRY_KEYS.has(k));
    if (unknown.length > 0) problems.push(`${name}: unknown keys (${unknown.filter((k) => /^[a-z_]{1,32}$/.test(k)).join(', ') || 'not named here'}); an entry has id, sha256, roles, expires, claims`);
    if (typeof id !== 'string' || !KEY_ID.test(id)) bad('id', `must match ${KEY_ID}`);
    else if (RESERVED_IDS.has(id)) bad('id', `${id} is reserved for requests without a caller`);
    if (typeof raw.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(raw.sha256)) bad('sha256', 'must be the SHA-256 of the key, 64 hex digits (watchtower keys create prints it)');
    const roles = raw.roles ?? [];
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string' && ROLE_NAME.test(r))) bad('roles', `must be a list of role names (${ROLE_NAME})`);
    let expiresAt: number | undefined;
    if (raw.expires !== undefined) {
      expiresAt = parseExpiry(raw.expires);
      if (expiresAt === undefined) bad('expires', 'must be an ISO 8601 date or date-time, quoted (e.g. "2026-12-31" or "2026-12-31T18:00:00Z")');
    }
    const claims: Record<string, string | number | boolean> = {};
    if (raw.claims !== undefined) {
      if (!isObj(raw.claims)) bad('claims', 'must be a mapping of claim name to a text, number or true/false');
      else {
        for (const [k, v] of Object.entries(raw.claims)) {
          if (!CLAIM_PATH.test(k) || k.includes('.') || ENTRY_OWN_CLAIMS.has(k)) bad('claims', 'a claim name is a letter or _ then letters, digits, _ or - (not sub or roles: those are the id and roles)');
          else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') bad(`claims.${k}`, 'must be a text, number or true/false');
          else claims[k] = v;
        }
      }
    }
    if (problems.length > before) return;
    out.push(Object.freeze({ id: id as string, sha256: (raw.sha256 as string).toLowerCase(), roles: Object.freeze([...(roles as string[])]), expiresAt, claims: Object.freeze(claims) }));
  });
  return out;
}

/** Private members of asymmetric JWKs: a JWKS file given to a verifier holds none. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

function parseJwks(doc: YamlMapping, file: string, problems: string[]): JsonWebKey[] {
  if (!Array.isArray(doc.keys)) {
    problems.push(`${file}: must hold a JSON Web Key Set, {"keys": [...]}`);
    return [];
  }
  const out: JsonWebKey[] = [];
  doc.keys.forEach((k: unknown, i: number) => {
    const at = `${file}: keys[${i}]`;
    if (!isObj(k) || typeof k.kty !== 'string') {
      problems.push(`${at}: must be a JSON Web Key with kty`);
      return;
    }
    if (k.kid !== undefined && typeof k.kid !== 'string') problems.push(`${at}.kid: must be text`);
    if (k.kty === 'oct') {
      const secret = typeof k.k === 'string' && /^[A-Za-z0-9_-]+$/.test(k.k) ? Buffer.from(k.k, 'base64url') : undefined;
      if (secret === undefined || secret.length < MIN_HMAC_BYTES) problems.push(`${at}: an oct key (HS*) needs k, base64url, of at least ${MIN_HMAC_BYTES} bytes`);
    } else if (!['RSA', 'EC', 'OKP'].includes(k.kty)) {
      problems.push(`${at}.kty: must be RSA, EC, OKP or oct`);
    } else if (PRIVATE_MEMBERS.some((m) => m in k)) {
      problems.push(`${at}: holds a private key; the file needs only the public key`);
    }
    out.push(Object.freeze({ ...(k as JsonWebKey) }));
  });
  return out;
}

/** The list form of a value that may be one text. */
function list(v: unknown): string[] {
  return typeof v === 'string' ? [v] : [...(v as string[])];
}

/**
 * The section as convict should see it: an issuer or audience given as one text becomes a list
 * (convict would read text where its default is a list as JSON).
 */
export function authDocForConvict(doc: Obj): Obj {
  const out = { ...doc };
  for (const key of ['jwt_issuer', 'jwt_audience']) if (typeof out[key] === 'string') out[key] = [out[key]];
  return out;
}

/**
 * The auth section with its files read, frozen. `files`: documents already read (a reload reads
 * them in a worker thread); a file not among them is read here. Throws one ConfigError listing
 * every problem.
 */
export function resolveAuth(raw: Obj, opts: { files?: ReadonlyMap<string, YamlMapping>; mainFile?: string }): AuthSettings {
  const problems: string[] = [];
  const keys: string[] = [];
  const read = (file: string): YamlMapping => opts.files?.get(file) ?? readYamlFile(file, false);
  const apiKeys = parseKeyEntries(raw.api_keys as unknown[], 'auth.api_keys', problems);
  if (problems.length > 0) keys.push('auth.api_keys');
  const keysFile = raw.api_keys_file as string;
  if (keysFile) {
    const doc = read(keysFile);
    const unknown = Object.keys(doc).filter((k) => k !== 'keys');
    if (unknown.length > 0 || !Array.isArray(doc.keys ?? [])) problems.push(`${keysFile}: must hold only keys:, a list of key entries`);
    else apiKeys.push(...parseKeyEntries((doc.keys as unknown[] | undefined) ?? [], `${keysFile}: keys`, problems));
    if (problems.length > 0 && !keys.includes('auth.api_keys_file')) keys.push('auth.api_keys_file');
  }
  const ids = new Set<string>();
  const hashes = new Set<string>();
  for (const k of apiKeys) {
    if (ids.has(k.id)) problems.push(`API key id ${k.id} is given twice`);
    if (hashes.has(k.sha256)) problems.push(`API key ${k.id} has the same sha256 as another key`);
    ids.add(k.id);
    hashes.add(k.sha256);
  }
  const jwksFile = raw.jwt_jwks_file as string;
  const jwks = jwksFile ? parseJwks(read(jwksFile), jwksFile, problems) : [];
  const jwt = jwksFile !== '' || raw.jwt_jwks_url !== '';
  if (jwt && (list(raw.jwt_issuer).length === 0 || list(raw.jwt_audience).length === 0)) {
    problems.push('auth.jwt_issuer and auth.jwt_audience must be set with a JWT key source: a token issued for another service must not open this one');
    keys.push('auth.jwt_issuer', 'auth.jwt_audience');
  }
  if (problems.length > 0) {
    throw new ConfigError(`auth refused, ${problems.length} problem(s): ${problems.join('; ')}`, { file: opts.mainFile, keys: keys.length > 0 ? keys : ['auth'] });
  }
  return Object.freeze({
    required: raw.required as boolean,
    api_keys_file: keysFile,
    api_keys: Object.freeze(apiKeys),
    jwt_jwks_file: jwksFile,
    jwks: Object.freeze(jwks),
    jwt_jwks_url: raw.jwt_jwks_url as string,
    jwt_jwks_cache: raw.jwt_jwks_cache as number,
    jwt_issuer: Object.freeze(list(raw.jwt_issuer)),
    jwt_audience: Object.freeze(list(raw.jwt_audience)),
    jwt_algorithms: Object.freeze([...(raw.jwt_algorithms as string[])]),
    jwt_clock_skew: raw.jwt_clock_skew as number,
    jwt_roles_claim: raw.jwt_roles_claim as string,
    jwt_cache_size: raw.jwt_cache_size as number,
    jwt_cache_seconds: raw.jwt_cache_seconds as number,
    sql_claims: Object.freeze([...(raw.sql_claims as string[])]),
    metrics_roles: Object.freeze([...(raw.metrics_roles as string[])]),
    docs_roles: Object.freeze([...(raw.docs_roles as string[])]),
  });
}

/** The files the auth section of a (merged) config document names, to be read before it is built. */
export function authFiles(doc: Obj): string[] {
  const auth = doc.auth;
  if (!isObj(auth)) return [];
  return [auth.api_keys_file, auth.jwt_jwks_file].filter((f): f is string => typeof f === 'string' && f !== '');
}

/** Which credential sources are configured (API keys, JWT keys); none means nobody is authenticated. */
export function credentialSources(auth: AuthSettings | undefined): string[] {
  if (!auth) return [];
  const out: string[] = [];
  if (auth.api_keys.length > 0 || auth.api_keys_file) out.push('api-keys');
  if (auth.jwt_jwks_file || auth.jwt_jwks_url) out.push('jwt');
  return out;
}

export interface AuthChange {
  key: string;
  from: unknown;
  to: unknown;
  /** What changed, in words, for the config-reload record: ids and kids only, never a key or hash. */
  summary?: string;
}

function idsDiff(before: Map<string, string>, after: Map<string, string>): string | undefined {
  const added = [...after.keys()].filter((k) => !before.has(k));
  const removed = [...before.keys()].filter((k) => !after.has(k));
  const replaced = [...after].filter(([k, v]) => before.has(k) && before.get(k) !== v).map(([k]) => k);
  const parts = [
    added.length > 0 ? `added ${added.join(', ')}` : '',
    removed.length > 0 ? `removed ${removed.join(', ')}` : '',
    replaced.length > 0 ? `changed ${replaced.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** A JWK's name in a record: its kid, else its position and type. */
function jwkName(k: JsonWebKey, i: number): string {
  return typeof k.kid === 'string' && KEY_ID.test(k.kid) ? k.kid : `#${i} (${k.kty})`;
}

/** The auth keys that differ, for the config-reload record; key material is named, never shown. */
export function diffAuth(before: AuthSettings | undefined, after: AuthSettings | undefined): AuthChange[] {
  if (!before || !after) return [];
  const changes: AuthChange[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const key of Object.keys(authSchema) as (keyof typeof authSchema)[]) {
    if (key === 'api_keys') continue;
    if (!same(before[key], after[key])) changes.push({ key: `auth.${key}`, from: before[key], to: after[key] });
  }
  const keys = idsDiff(
    new Map(before.api_keys.map((k) => [k.id, JSON.stringify(k)])),
    new Map(after.api_keys.map((k) => [k.id, JSON.stringify(k)])),
  );
  if (keys) changes.push({ key: 'auth.api_keys', from: undefined, to: undefined, summary: `API keys ${keys}` });
  const jwks = idsDiff(new Map(before.jwks.map((k, i) => [jwkName(k, i), JSON.stringify(k)])), new Map(after.jwks.map((k, i) => [jwkName(k, i), JSON.stringify(k)])));
  if (jwks) changes.push({ key: 'auth.jwks', from: undefined, to: undefined, summary: `JWT keys ${jwks}` });
  return changes;
}

/** Whether `auth.<key>` may change on a reload. */
export function isAuthKeyReloadable(key: string): boolean {
  if (key === 'jwks') return true;
  return authSchema[key as keyof typeof authSchema]?.reloadable ?? false;
}
