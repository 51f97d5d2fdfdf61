#!/usr/bin/env bash
# tests/integration/tls/make-ca.sh OUTDIR
#
# Makes the certificates of the TLS tests with the openssl command line
# (EC P-256 keys, so it takes well under a second):
#   ca.pem ca.key                 the test CA
#   server.pem server.key         broker certificate from that CA for
#                                 DNS:localhost and IP:127.0.0.1 (SAN)
#   client.pem client.key         client certificate from that CA (clientAuth)
#   other-ca.pem other-ca.key     a second CA that has nothing to do with the first
#   other-client.pem/.key         a client certificate from the second CA
#   expired.pem expired.key       broker certificate from the test CA, same
#                                 names, valid only on 2020-01-01
# OUTDIR is created; files already there are replaced. Private keys are
# mode 0600 (the caller hands the broker's key to the rabbitmq user).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
cd "$out"
umask 077

newkey() {  # newkey FILE
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

ca() {  # ca NAME CN
    newkey "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf NAME CN CA EXTENSIONS: a certificate signed by CA, valid ten years.
leaf() {
    newkey "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%b' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
        -out "$1.pem" -days 3650 -sha256 -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

server_ext='subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n'
client_ext='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'

ca ca "warren test CA"
ca other-ca "unrelated test CA"
leaf server localhost ca "$server_ext"
leaf client warren-client ca "$client_ext"
leaf other-client warren-client other-ca "$client_ext"

# An expired certificate needs explicit dates, which `openssl ca` takes.
rm -rf ca-db
mkdir ca-db
: > ca-db/index.txt
echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $PWD/ca-db/index.txt
new_certs_dir = $PWD/ca-db
serial = $PWD/ca-db/serial
default_md = sha256
policy = any_name
unique_subject = no
[ any_name ]
commonName = supplied
[ server_ext ]
$(printf '%b' "$server_ext")
CNF
newkey expired.key
openssl req -new -key expired.key -out expired.csr -subj "/CN=localhost" 2>/dev/null
openssl ca -batch -config ca-db/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
    -out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z \
    -extensions server_ext -notext 2>/dev/null
rm -rf ca-db expired.csr ca.srl other-ca.srl

chmod 0644 ./*.pem
for f in ca server client other-client expired; do
    openssl x509 -in "$f.pem" -noout >/dev/null
done
echo "make-ca.sh: certificates in $out"
