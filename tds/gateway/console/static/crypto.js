// The console's cryptography, in the page (WebCrypto + ethers' scrypt): job parameters sealed to
// the provider's key service (chain/params.py, tds-params/1), the consumer's DID key file opened
// with its password (did/keystore.py, tds-did-keys/1), sealed answers opened and their sender's
// signature checked (did/envelope.py). No key leaves the page.
import { scrypt, getBytes, hexlify, decodeBase58, toBeArray, toUtf8Bytes, toUtf8String } from "./vendor.js";

const subtle = crypto.subtle;
const PKCS8_X25519 = "302e020100300506032b656e04220420";

export function b64u(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64uDecode(text) {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

const hex = (b) => hexlify(b).slice(2);
const concat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; } return out; };

/** Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False). */
export function canonical(value) {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isInteger(value)) throw new Error("canonical JSON: integers only");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
}

/** The same with ensure_ascii=True (Python's default), for the key file's associated data. */
function asciiJson(value) {
  return canonical(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

async function hkdf(shared, salt, info) {
  const k = await subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, k, 256));
}

async function aesGcm(keyBytes, iv, data, aad, encrypt) {
  const key = await subtle.importKey("raw", keyBytes, "AES-GCM", false, [encrypt ? "encrypt" : "decrypt"]);
  const op = encrypt ? subtle.encrypt.bind(subtle) : subtle.decrypt.bind(subtle);
  return new Uint8Array(await op({ name: "AES-GCM", iv, additionalData: aad }, key, data));
}

async function x25519(privateKey, publicRaw) {
  const pub = await subtle.importKey("raw", publicRaw, { name: "X25519" }, false, []);
  return new Uint8Array(await subtle.deriveBits({ name: "X25519", public: pub }, privateKey, 256));
}

const rand = (n) => crypto.getRandomValues(new Uint8Array(n));

/** The sealed parameter block (canonical JSON text) of `query` for the raw X25519 keys `recipients`. */
export async function sealParams(query, recipients) {
  const plain = toUtf8Bytes(canonical({ query, salt: hex(rand(32)) }));
  const cek = rand(32), nonce = rand(12);
  const wrapped = [];
  for (const rpk of recipients) {
    const eph = await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    const epk = new Uint8Array(await subtle.exportKey("raw", eph.publicKey));
    const key = await hkdf(await x25519(eph.privateKey, rpk), concat(epk, rpk), toUtf8Bytes("tds/job-params/v1"));
    const wnonce = rand(12);
    wrapped.push({ key: hex(rpk), epk: hex(epk), nonce: hex(wnonce),
      wrapped: hex(await aesGcm(key, wnonce, cek, rpk, true)) });
  }
  const body = await aesGcm(cek, nonce, plain, toUtf8Bytes("tds-params/1"), true);
  return JSON.parse(canonical({ format: "tds-params/1", recipients: wrapped, nonce: hex(nonce), ciphertext: hex(body) }));
}

/** The X25519 and Ed25519 keys in a DID key file (did-keys.json), opened with `password`. */
export async function openKeyFile(blob, password) {
  if (blob.format !== "tds-did-keys/1" || blob.cipher !== "aes-256-gcm" || blob.kdf !== "scrypt") {
    throw new Error("KeyFileUnsupported: this is not a tds DID key file (did-keys.json)");
  }
  if (blob.n > 2 ** 20 || blob.r !== 8 || blob.p !== 1) throw new Error("KeyFileRefused: its scrypt cost is out of range");
  const header = {};
  for (const k of ["format", "label", "kdf", "n", "r", "p", "salt", "cipher", "nonce"]) header[k] = blob[k];
  const key = getBytes(await scrypt(toUtf8Bytes(password), b64uDecode(blob.salt), blob.n, blob.r, blob.p, 32));
  let plain;
  try {
    plain = await aesGcm(key, b64uDecode(blob.nonce), b64uDecode(blob.ciphertext), toUtf8Bytes(asciiJson(header)), false);
  } catch (_) {
    throw new Error("WrongPassword: the password does not open this key file (or the file was altered)");
  }
  const secrets = JSON.parse(toUtf8String(plain));
  const raw = b64uDecode(secrets.x25519);
  const x = await subtle.importKey("pkcs8", concat(getBytes("0x" + PKCS8_X25519), raw), { name: "X25519" }, false,
    ["deriveBits"]);
  return { did: blob.label, x25519: x };
}

/** The Ed25519 public key of a did:key (z6Mk…, multicodec 0xed01). */
function ed25519OfDid(did) {
  if (!did.startsWith("did:key:z")) throw new Error(`EnvelopeAuthError: the sender ${did} is not a did:key`);
  const bytes = toBeArray(decodeBase58(did.slice("did:key:z".length)));  // 0xed01…: no leading zero bytes
  if (bytes[0] !== 0xed || bytes[1] !== 0x01 || bytes.length !== 34) throw new Error("EnvelopeAuthError: not an Ed25519 did:key");
  return bytes.slice(2);
}

/** Check and open a sealed envelope (bytes) for the holder of `keys`; returns the plaintext text. */
export async function openEnvelope(bytes, keys, { purpose, purposePrefix, expectedSender, senderCheck } = {}) {
  const env = JSON.parse(toUtf8String(bytes));
  const h = env.header;
  if (h.v === 1 && h.alg === "SM2-KDF-SM3-SM4GCM+SM2") {
    throw new Error("UnsupportedInBrowser: this answer is sealed with the sm cryptography profile (SM2/SM4), which "
      + "WebCrypto lacks; download it and open it with 'tds job result --sealed'");
  }
  if (h.v !== 1 || h.alg !== "X25519-HKDF-SHA256-A256GCM+Ed25519") throw new Error("MalformedEnvelope: unknown envelope format");
  if (h.to !== keys.did) throw new Error(`EnvelopeNotForYou: the answer is sealed to ${h.to}, not to ${keys.did}`);
  if (purpose && h.purpose !== purpose) throw new Error(`EnvelopeAuthError: purpose ${h.purpose}, expected ${purpose}`);
  if (expectedSender && h.from !== expectedSender) throw new Error(`EnvelopeAuthError: from ${h.from}, expected ${expectedSender}`);
  if (purposePrefix && !String(h.purpose).startsWith(purposePrefix)) {
    throw new Error(`EnvelopeAuthError: purpose ${h.purpose}, expected ${purposePrefix}…`);
  }
  if (senderCheck && !(await senderCheck(h.from))) {
    throw new Error(`EnvelopeAuthError: the answer is sealed by ${h.from}, who is not bound on chain to the account that must send it`);
  }
  const ct = b64uDecode(env.ciphertext), headerBytes = toUtf8Bytes(canonical(h));
  const signed = concat(toUtf8Bytes("tds-envelope/v1"), headerBytes, ct);
  const edKey = await subtle.importKey("raw", ed25519OfDid(h.from), { name: "Ed25519" }, false, ["verify"]);
  if (!(await subtle.verify({ name: "Ed25519" }, edKey, b64uDecode(env.signature), signed))) {
    throw new Error(`EnvelopeAuthError: the signature of ${h.from} does not verify (altered in transit?)`);
  }
  const epk = b64uDecode(h.epk), rpk = b64uDecode(h.rpk);
  const info = concat(toUtf8Bytes("tds-envelope/v1"), toUtf8Bytes(canonical({ from: h.from, to: h.to, purpose: h.purpose })));
  const key = await hkdf(await x25519(keys.x25519, epk), concat(epk, rpk), info);
  try {
    return toUtf8String(await aesGcm(key, b64uDecode(h.nonce), ct, headerBytes, false));
  } catch (_) {
    throw new Error("EnvelopeAuthError: the answer does not decrypt with this key file");
  }
}
