# An independent implementation of docs/format.md in Python, written from the spec
# alone, that checks every vector: python3 check_vectors.py internal/envelope/testdata
# (needs the "cryptography" package).
import json, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.exceptions import InvalidTag
D = sys.argv[1]
MAGIC = b"byok"
def lp8(x): return bytes([len(x)]) + x
def lp64(x): return len(x).to_bytes(8, "big") + x
def hkdf(ikm, salt, info): return HKDF(hashes.SHA256(), 32, salt if salt else None, info).derive(ikm)
class Fmt(Exception): pass
class Auth(Exception): pass
class Trunc(Exception): pass
def prefix(b, T, M):
    n = min(len(b), 4)
    if b[:n] != MAGIC[:n]: raise Fmt("magic")
    if len(b) < 6: raise Fmt("short")
    if b[4] != 1: raise Fmt("version")
    if b[5] != T: raise Fmt("type")
    if len(b) < M: raise Fmt("short")
def open_msg(key, t, s, aad, ct):
    prefix(ct, 1, 50)
    ad = ct[:34] + lp8(t) + lp8(s) + lp64(aad)
    try: return AESGCM(key).decrypt(ct[22:34], ct[34:], ad)
    except InvalidTag: raise Auth()
def unwrap(tk, kid, t, s, w):
    prefix(w, 3, 66)
    if len(w) != 66: raise Fmt("len")
    ad = w[:18] + kid + lp8(t) + lp8(s)
    try: return AESGCM(tk).decrypt(w[6:18], w[18:], ad)
    except InvalidTag: raise Auth()
def nonce(i, last): return b"\0\0\0" + i.to_bytes(8, "big") + bytes([1 if last else 0])
def read_stream(dek, t, s, aad, b):
    prefix(b[:54], 2, 54)
    hdr, rest = b[:54], b[54:]
    k = AESGCM(hkdf(dek, hdr[22:54], hdr + lp8(t) + lp8(s) + lp64(aad)))
    out, i = b"", 0
    while True:
        chunk = rest[:65553]
        if len(chunk) == 65553: seg, last, rest = chunk[:65552], False, rest[65552:]
        else: seg, last, rest = chunk, True, b""
        if len(seg) == 0: raise Trunc()
        if len(seg) < 16: raise Auth()
        try: pt = k.decrypt(nonce(i, last), seg, None)
        except InvalidTag:
            if last and len(seg) == 65552:
                try: k.decrypt(nonce(i, False), seg, None); raise Trunc()
                except InvalidTag: pass
            raise Auth()
        if last and not pt and i > 0: raise Fmt("empty final")
        out += pt
        if last: return out
        i += 1
def write_stream(dek, kid, salt, t, s, aad, pt):
    hdr = MAGIC + b"\x01\x02" + kid + salt
    k = AESGCM(hkdf(dek, salt, hdr + lp8(t) + lp8(s) + lp64(aad)))
    segs = [pt[i:i+65536] for i in range(0, len(pt), 65536)] or [b""]
    return hdr + b"".join(k.encrypt(nonce(i, i == len(segs)-1), p, None) for i, p in enumerate(segs))
cls = {"auth": Auth, "truncated": Trunc, "format": Fmt}
def load(n): return json.load(open(f"{D}/{n}"))
def h(v, k): return bytes.fromhex(v.get(k) or "")
count = 0
def run(name, dec, enc):
    global count
    for v in load(name):
        args = [h(v, "key"), h(v, "tenant"), h(v, "scope"), h(v, "aad"), h(v, "ciphertext")]
        try:
            pt = dec(v, *args)
            assert not v.get("error"), (name, v["comment"], "expected error")
            assert pt == h(v, "plaintext"), (name, v["comment"])
            assert enc(v, *args) == args[-1], (name, v["comment"], "re-encrypt")
        except (Fmt, Auth, Trunc) as e:
            assert v.get("error") and isinstance(e, cls[v["error"]]), (name, v["comment"], type(e))
        count += 1
run("message.json", lambda v, k, t, s, a, c: open_msg(k, t, s, a, c),
    lambda v, k, t, s, a, c: c[:34] + AESGCM(k).encrypt(c[22:34], h(v, "plaintext"), c[:34] + lp8(t) + lp8(s) + lp64(a)))
run("wrap.json", lambda v, k, t, s, a, c: unwrap(k, h(v, "id"), t, s, c),
    lambda v, k, t, s, a, c: c[:18] + AESGCM(k).encrypt(c[6:18], h(v, "plaintext"), c[:18] + h(v, "id") + lp8(t) + lp8(s)))
run("stream.json", lambda v, k, t, s, a, c: read_stream(k, t, s, a, c),
    lambda v, k, t, s, a, c: write_stream(k, h(v, "id"), c[22:54], t, s, a, h(v, "plaintext")))
for v in load("derive.json"):
    info = MAGIC + b"\x01\x04" + lp8(h(v, "tenant")) + bytes([v["kind"]]) + v["epoch"].to_bytes(4, "big")
    assert hkdf(h(v, "customer_share") + h(v, "platform_share"), b"", info) == h(v, "key"), v["comment"]
    count += 1
print("all", count, "vectors agree with the spec")
