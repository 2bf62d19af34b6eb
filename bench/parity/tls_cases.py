"""TLS servers both scanners judge: each case is an `openssl s_server` with one certificate set-up.

Fields: key (an openssl -newkey or curve spec), digest (the issuer's signature hash), start/end
(days from now, for the leaf), names (the leaf's DNS names), chain (what the server sends after the
leaf: "inter", "none", "inter+root", "root+inter"), issuer ("inter", "self"), trusted (whether the
scanners get the private root), inter_end (days left on the intermediate), args (s_server flags).
"""

LEGACY = ["-cipher", "DEFAULT@SECLEVEL=0"]


def case(name, **kw):
    c = dict(name=name, key="rsa:2048", digest="sha256", start=-30, end=200, names=["localhost"],
             chain="inter", issuer="inter", trusted=True, inter_end=1000, args=[], deviation={})
    c.update(kw)
    return c


CASES = [
    case("rsa-2048"),
    case("rsa-4096", key="rsa:4096"),
    case("ec-p256", key="ec:prime256v1"),
    case("ec-p384", key="ec:secp384r1", digest="sha384"),
    case("ec-p521", key="ec:secp521r1", digest="sha512"),
    case("ed25519", key="ed25519", args=["-tls1_3"]),
    case("expired", start=-400, end=-3),
    case("expires-in-10-days", end=10),
    case("expires-in-3-days", end=3),
    case("not-yet-valid", start=5, end=200),
    case("self-signed", issuer="self", chain="none"),
    case("missing-intermediate", chain="none"),
    case("unknown-root", trusted=False),
    case("wrong-host", names=["other.example.com"]),
    case("rsa-1024", key="rsa:1024", args=LEGACY,
         deviation={"trusted": "browsers refuse a 1024-bit RSA leaf; testssl.sh's chain check accepts it and flags only the key size"}),
    case("sha1-signed", digest="sha1", args=LEGACY,
         deviation={"trusted": "browsers refuse SHA-1 certificate signatures; testssl.sh's chain check accepts it and flags only the algorithm"}),
    case("root-in-chain", chain="inter+root"),
    case("chain-out-of-order", chain="root+inter"),
    case("expired-intermediate", inter_end=-2),
    case("tls12-only", args=["-tls1_2"]),
    case("tls13-only", args=["-tls1_3"]),
    case("tls10-only", args=["-tls1"] + LEGACY),
    case("tls11-only", args=["-tls1_1"] + LEGACY),
    case("tls10-to-13", args=LEGACY),
    case("legacy-with-expired-cert", start=-400, end=-3, args=["-tls1_1"] + LEGACY),
]
