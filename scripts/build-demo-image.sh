#!/bin/sh
# Builds the demo image from Debian's busybox-static, reproducibly, in both import formats:
#   OUTDIR/demo-docker.tar   docker-archive (`docker save` layout), tagged demo:latest
#   OUTDIR/demo-oci/         OCI image layout directory (ref.name demo:latest)
#   OUTDIR/demo-oci.tar      the same layout as a tar
# Two layers: a base (static busybox, an applet symlink per command, /etc/passwd, /tmp)
# and an app layer (/www/index.html and /www/cgi-bin/id, which answers with the
# container's hostname so tests can tell replicas apart). The image runs
# `httpd -f -p 80 -h /www`. Uses only sh, tar, gzip and sha256sum; same busybox and
# tools in, same bytes out (fixed mtimes, sorted entries, numeric root owners).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
bb=/bin/busybox
[ -x "$bb" ] || bb=$(command -v busybox) || { echo "build-demo-image: busybox-static is not installed" >&2; exit 1; }
file "$bb" 2>/dev/null | grep -q "dynamically linked" && { echo "build-demo-image: $bb is not static" >&2; exit 1; }

umask 022
mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export LC_ALL=C TZ=UTC
epoch=1704067200 # 2024-01-01T00:00:00Z

# ---- layer 1: busybox base ----
base=$work/base
mkdir -p "$base/bin" "$base/etc" "$base/tmp" "$base/root" "$base/proc" "$base/sys" "$base/dev" "$base/var/log"
cp "$bb" "$base/bin/busybox"
chmod 0755 "$base/bin/busybox"
for a in $("$bb" --list | sort -u); do
	case $a in busybox|*/*|"") continue ;; esac
	ln -s busybox "$base/bin/$a"
done
chmod 1777 "$base/tmp"
chmod 0700 "$base/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$base/etc/group"
chmod 0644 "$base/etc/passwd" "$base/etc/group"

# ---- layer 2: the web app ----
app=$work/app
mkdir -p "$app/www/cgi-bin"
cat >"$app/www/index.html" <<'HTML'
<!doctype html>
<html><head><title>orch demo</title></head>
<body><h1>orch demo</h1><p>This replica: <a href="/cgi-bin/id">/cgi-bin/id</a></p></body></html>
HTML
cat >"$app/www/cgi-bin/id" <<'CGI'
#!/bin/sh
# Answers with the container's hostname: tells replicas apart.
printf 'Content-Type: text/plain\r\n\r\n'
hostname
CGI
chmod 0644 "$app/www/index.html"
chmod 0755 "$app/www/cgi-bin/id"

mktar() { # DIR OUT: a reproducible tar of DIR's contents
	tar --sort=name --mtime=@$epoch --owner=0 --group=0 --numeric-owner --format=gnu \
		-C "$1" -cf "$2" .
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c <"$1" | tr -d ' '; }

mktar "$base" "$work/l1.tar"
mktar "$app" "$work/l2.tar"
d1=$(sha "$work/l1.tar")
d2=$(sha "$work/l2.tar")
gzip -n -9 -c "$work/l1.tar" >"$work/l1.tar.gz"
gzip -n -9 -c "$work/l2.tar" >"$work/l2.tar.gz"
g1=$(sha "$work/l1.tar.gz")
g2=$(sha "$work/l2.tar.gz")

printf '%s' '{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",'\
'"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'\
'"Cmd":["/bin/httpd","-f","-p","80","-h","/www"],"WorkingDir":"/","ExposedPorts":{"80/tcp":{}}},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:'"$d1"'","sha256:'"$d2"'"]},'\
'"history":[{"created":"2024-01-01T00:00:00Z","created_by":"busybox base"},'\
'{"created":"2024-01-01T00:00:00Z","created_by":"www app"}]}' >"$work/config.json"
cfg=$(sha "$work/config.json")

# ---- docker-archive ----
da=$work/docker
mkdir -p "$da/$d1" "$da/$d2"
cp "$work/l1.tar" "$da/$d1/layer.tar"
cp "$work/l2.tar" "$da/$d2/layer.tar"
cp "$work/config.json" "$da/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["demo:latest"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' \
	"$cfg" "$d1" "$d2" >"$da/manifest.json"
printf '{"demo":{"latest":"%s"}}' "$d2" >"$da/repositories"
mktar "$da" "$work/demo-docker.tar"

# ---- OCI layout ----
oci=$work/oci
mkdir -p "$oci/blobs/sha256"
cp "$work/l1.tar.gz" "$oci/blobs/sha256/$g1"
cp "$work/l2.tar.gz" "$oci/blobs/sha256/$g2"
cp "$work/config.json" "$oci/blobs/sha256/$cfg"
lt=application/vnd.oci.image.layer.v1.tar+gzip
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},'\
'"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s},{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
	"$cfg" "$(size "$work/config.json")" "$lt" "$g1" "$(size "$work/l1.tar.gz")" "$lt" "$g2" "$(size "$work/l2.tar.gz")" \
	>"$work/manifest.json"
man=$(sha "$work/manifest.json")
cp "$work/manifest.json" "$oci/blobs/sha256/$man"
printf '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":'\
'"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,'\
'"annotations":{"org.opencontainers.image.ref.name":"demo:latest"}}]}' "$man" "$(size "$work/manifest.json")" \
	>"$oci/index.json"
chmod -R a+rX,go-w "$da" "$oci"
mktar "$oci" "$work/demo-oci.tar"

# ---- publish ----
rm -rf "$out/demo-oci"
cp -R "$oci" "$out/demo-oci"
mv "$work/demo-docker.tar" "$out/demo-docker.tar"
mv "$work/demo-oci.tar" "$out/demo-oci.tar"
echo "demo image: $out/demo-docker.tar $out/demo-oci.tar $out/demo-oci (config sha256:$cfg, manifest sha256:$man)"
