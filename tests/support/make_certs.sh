#!/usr/bin/env bash
# make_certs.sh OUTDIR
#
# Creates the test PKI used by the DTLS/TLS tests, using only the openssl CLI.
# All keys are EC P-256, unencrypted PKCS#8 ("BEGIN PRIVATE KEY"). Every single
# certificate X.crt and key X.key also gets a DER copy X.crt.der / X.key.der
# (PKCS#8 DER for keys); CRLs get X.crl.der.
#
#   ca.crt/.key            root CA "coap-cpp test CA", 10 years, CA:true,
#                          keyUsage keyCertSign,cRLSign
#   server.crt/.key        CN localhost, SAN DNS:localhost,IP:127.0.0.1,IP:::1
#   client.crt/.key        CN coap-client, SAN DNS:coap-client
#   expired.crt/.key       CN localhost + SANs, valid 2020-01-01..2021-01-01
#   revoked.crt/.key       CN localhost + SANs, listed in ca.crl
#   ca.crl(.der)           CRL by ca listing revoked.crt, nextUpdate now+30d
#   expired.crl(.der)      CRL by ca listing revoked.crt, lastUpdate now-2d,
#                          nextUpdate now-1d (already expired)
#   rogue-ca.crt/.key      an unrelated root CA "coap-cpp rogue CA"
#   untrusted.crt/.key     CN localhost + SANs, signed by rogue-ca
#   selfsigned.crt/.key    self-signed leaf (CA:false), CN localhost + SANs
#   inter-ca.crt/.key      intermediate CA signed by ca, pathlen:0
#   chain-leaf.crt/.key    CN localhost + SANs, signed by inter-ca
#   chain-leaf-bundle.crt  chain-leaf.crt followed by inter-ca.crt
#   ca-bundle.crt          copy of ca.crt
#   nosan.crt/.key         CN localhost, no SubjectAltName, signed by ca
#   urisan.crt/.key        CN coap-uri, SAN URI:coaps://coap.example:5684/ only, by ca
#
# Keys in the other formats (for pki_keys_test and the libcoap interop stage):
#   sec1.crt/.key          CN localhost + SANs, by ca; the key as `openssl ecparam -genkey`
#                          writes it: an "EC PARAMETERS" block, then SEC 1 "EC PRIVATE KEY"
#   sec1.key.der           the same key, SEC 1 DER
#   client.sec1.key        client.key as SEC 1 PEM alone (`openssl ec`, no parameters block)
#   rsa.crt/.key           CN localhost + SANs, by ca; RSA 2048, PKCS #1 PEM "RSA PRIVATE KEY"
#   rsa.key.der            the same key, PKCS #1 DER
#   server.encrypted.key   server.key as encrypted PKCS #8 (password "secret")
#   server.legacy-encrypted.key  server.key as SEC 1 PEM with OpenSSL's legacy encryption
#
# Leaves are valid for 3650 days, have keyUsage digitalSignature and
# extendedKeyUsage serverAuth,clientAuth.
#
# Idempotent: if OUTDIR already holds a complete set made less than 7 days ago
# (so ca.crl is still fresh), nothing is done. Otherwise everything is made in
# a temporary directory and moved into OUTDIR. Prints nothing on success.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1

files=(ca.crt ca.key server.crt server.key client.crt client.key
  expired.crt expired.key revoked.crt revoked.key ca.crl ca.crl.der expired.crl
  expired.crl.der rogue-ca.crt rogue-ca.key untrusted.crt untrusted.key
  selfsigned.crt selfsigned.key inter-ca.crt inter-ca.key chain-leaf.crt
  chain-leaf.key chain-leaf-bundle.crt ca-bundle.crt nosan.crt nosan.key urisan.crt urisan.key
  sec1.crt sec1.key sec1.key.der client.sec1.key rsa.crt rsa.key rsa.key.der
  server.encrypted.key server.legacy-encrypted.key)

mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp="$out/.make_certs.stamp"
if [[ -f $stamp ]]; then
  complete=1
  for f in "${files[@]}"; do
    [[ -s $out/$f ]] || { complete=0; break; }
  done
  made=$(cat "$stamp" 2>/dev/null || echo 0)
  now=$(date +%s)
  if [[ $complete == 1 && $made =~ ^[0-9]+$ ]] && ((now - made < 7 * 86400)); then
    exit 0
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/make_certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

cat >openssl.cnf <<'EOF'
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ v3_ca ]
basicConstraints       = critical,CA:true
keyUsage               = critical,keyCertSign,cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_inter ]
basicConstraints       = critical,CA:true,pathlen:0
keyUsage               = critical,keyCertSign,cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_leaf ]
basicConstraints       = critical,CA:false
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth,clientAuth
subjectAltName         = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_client ]
basicConstraints       = critical,CA:false
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth,clientAuth
subjectAltName         = DNS:coap-client
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_nosan ]
basicConstraints       = critical,CA:false
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth,clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_urisan ]
basicConstraints       = critical,CA:false
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth,clientAuth
subjectAltName         = URI:coaps://coap.example:5684/
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ v3_selfsigned ]
basicConstraints       = critical,CA:false
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth,clientAuth
subjectAltName         = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier   = hash

[ ca ]
default_ca = test_ca
[ test_ca ]
dir             = .
database        = ./index.txt
new_certs_dir   = ./newcerts
serial          = ./serial
crlnumber       = ./crlnumber
default_md      = sha256
policy          = policy_any
unique_subject  = no
copy_extensions = none
crl_extensions  = crl_ext
[ policy_any ]
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
export OPENSSL_CONF="$work/openssl.cnf"
mkdir newcerts
: >index.txt
echo 1000 >crlnumber
openssl rand -hex 16 >serial

genkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1.key" 2>/dev/null
}

serial() { echo "0x$(openssl rand -hex 16)"; }

# selfca NAME CN
selfca() {
  genkey "$1"
  openssl req -new -x509 -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -set_serial "$(serial)" -config openssl.cnf -extensions v3_ca -out "$1.crt"
}

# sign NAME CN ISSUER EXT
sign() {
  genkey "$1"
  openssl req -new -key "$1.key" -subj "/CN=$2" -config openssl.cnf -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "$(serial)" \
    -days 3650 -sha256 -extfile openssl.cnf -extensions "$4" -out "$1.crt" 2>/dev/null
}

selfca ca "coap-cpp test CA"
sign server localhost ca v3_leaf
sign client coap-client ca v3_client
sign revoked localhost ca v3_leaf

# Expired leaf: validity entirely in the past.
genkey expired
openssl req -new -key expired.key -subj "/CN=localhost" -config openssl.cnf -out expired.csr
openssl ca -batch -config openssl.cnf -keyfile ca.key -cert ca.crt -in expired.csr \
  -startdate 20200101000000Z -enddate 20210101000000Z -extensions v3_leaf \
  -extfile openssl.cnf -notext -out expired.crt 2>/dev/null

# Revoke and make CRLs (ca.crl fresh, expired.crl past its nextUpdate).
openssl ca -config openssl.cnf -keyfile ca.key -cert ca.crt -revoke revoked.crt \
  -crl_reason keyCompromise 2>/dev/null
openssl ca -config openssl.cnf -keyfile ca.key -cert ca.crt -gencrl -crldays 30 \
  -out ca.crl 2>/dev/null
openssl ca -config openssl.cnf -keyfile ca.key -cert ca.crt -gencrl \
  -crl_lastupdate "$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)" \
  -crl_nextupdate "$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)" \
  -out expired.crl 2>/dev/null

selfca rogue-ca "coap-cpp rogue CA"
sign untrusted localhost rogue-ca v3_leaf

genkey selfsigned
openssl req -new -x509 -key selfsigned.key -subj "/CN=localhost" -days 3650 -sha256 \
  -set_serial "$(serial)" -config openssl.cnf -extensions v3_selfsigned -out selfsigned.crt

sign inter-ca "coap-cpp test intermediate CA" ca v3_inter
sign chain-leaf localhost inter-ca v3_leaf
cat chain-leaf.crt inter-ca.crt >chain-leaf-bundle.crt
cp ca.crt ca-bundle.crt
sign nosan localhost ca v3_nosan
sign urisan coap-uri ca v3_urisan

for n in ca server client expired revoked rogue-ca untrusted selfsigned inter-ca chain-leaf; do
  openssl x509 -in "$n.crt" -outform DER -out "$n.crt.der"
  openssl pkcs8 -topk8 -nocrypt -in "$n.key" -outform DER -out "$n.key.der"
  chmod 644 "$n.key" "$n.key.der"
done
for n in ca expired; do
  openssl crl -in "$n.crl" -outform DER -out "$n.crl.der"
done

# certify NAME CN ISSUER EXT: as sign, for the key NAME.key made beforehand.
certify() {
  openssl req -new -key "$1.key" -subj "/CN=$2" -config openssl.cnf -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "$(serial)" \
    -days 3650 -sha256 -extfile openssl.cnf -extensions "$4" -out "$1.crt" 2>/dev/null
}
openssl ecparam -genkey -name prime256v1 -out sec1.key
certify sec1 localhost ca v3_leaf
openssl ec -in sec1.key -outform DER -out sec1.key.der 2>/dev/null
openssl ec -in client.key -out client.sec1.key 2>/dev/null
openssl genrsa -traditional -out rsa.key 2048 2>/dev/null
certify rsa localhost ca v3_leaf
openssl rsa -in rsa.key -traditional -outform DER -out rsa.key.der 2>/dev/null
openssl pkcs8 -topk8 -in server.key -passout pass:secret -out server.encrypted.key
openssl ec -in server.key -aes128 -passout pass:secret -out server.legacy-encrypted.key 2>/dev/null
chmod 644 sec1.key sec1.key.der client.sec1.key rsa.key rsa.key.der server.encrypted.key \
  server.legacy-encrypted.key

for f in *.crt *.key *.der *.crl; do
  mv -f "$f" "$out/$f"
done
date +%s >"$stamp"
