#!/usr/bin/env bash
# Installs relayd on a Linux server: the binary, the relayd system user, an
# example config for the chosen role, the data directory and a hardened
# systemd unit. Safe to re-run (an upgrade): it never overwrites an existing
# /etc/relayd/relayd.yaml. See docs/operations.md.
#
#   sudo scripts/install.sh [--role origin|mirror|proxy] [--binary PATH] [--prefix DIR]
#
# Environment:
#   DESTDIR  a staging root (packaging, tests): every path is written under
#            it. The relayd user cannot be created inside a staging root and
#            nothing is chowned there: create the user on the target (e.g. in
#            the package's postinst) — the unit's StateDirectory= gives
#            /var/lib/relayd to it on first start.
#   PREFIX   where bin/relayd goes (default /usr/local); --prefix beats it.
#   UNITDIR  where relayd.service goes (default /lib/systemd/system).
#   GO       the go command used to build when --binary is not given (default go).
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/install.sh [--role origin|mirror|proxy] [--binary PATH] [--prefix DIR]

  --role ROLE    which example config becomes /etc/relayd/relayd.yaml:
                 origin (docs/examples/origin.yaml), mirror (mirror-hub.yaml)
                 or proxy (branch-proxy.yaml, the default)
  --binary PATH  install this relayd binary instead of building one with go
  --prefix DIR   install the binary as DIR/bin/relayd (default $PREFIX or /usr/local)

DESTDIR=DIR installs into a staging root (no user creation, no chown, no
systemctl). Run as root for a real install.
EOF
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}
say() { echo "  $*"; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
role=proxy
binary=
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
unitdir=${UNITDIR:-/lib/systemd/system}
go=${GO:-go}

while [ $# -gt 0 ]; do
	case $1 in
	--role) [ $# -ge 2 ] || die "--role needs a value"; role=$2; shift 2 ;;
	--role=*) role=${1#*=}; shift ;;
	--binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
	--binary=*) binary=${1#*=}; shift ;;
	--prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

case $role in
origin) example=origin.yaml ;;
mirror) example=mirror-hub.yaml ;;
proxy) example=branch-proxy.yaml ;;
*) die "--role $role: want origin, mirror or proxy" ;;
esac
example="$repo/docs/examples/$example"
[ -f "$example" ] || die "example config $example is missing"
unit_src="$repo/scripts/relayd.service"
[ -f "$unit_src" ] || die "unit file $unit_src is missing"

# The prefix ends up in the unit's ExecStart: keep it a plain absolute path.
[[ $prefix =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "prefix $prefix: want an absolute path of letters, digits and ._/+-"
prefix=${prefix%/}
[[ $unitdir =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "UNITDIR $unitdir: want an absolute path"
if [ -n "$destdir" ]; then
	destdir=$(mkdir -p "$destdir" && cd "$destdir" && pwd)
fi
if [ "$(uname -s)" != Linux ] && [ -z "$destdir" ]; then
	die "relayd installs on Linux only (use DESTDIR to stage elsewhere)"
fi

bin_dst="$destdir$prefix/bin/relayd"
etc_dir="$destdir/etc/relayd"
config_dst="$etc_dir/relayd.yaml"
data_dir="$destdir/var/lib/relayd"
unit_dst="$destdir$unitdir/relayd.service"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Whether this run may create users and chown: only a real install as root.
real_root=false
if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
	real_root=true
fi

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
	for d in "$prefix" /etc /var/lib "$unitdir"; do
		while [ ! -e "$d" ]; do d=$(dirname "$d"); done
		[ -w "$d" ] || die "not root, and $d is not writable: run as root (sudo), or set DESTDIR to stage the files"
	done
fi

echo "Installing relayd (role $role) into ${destdir:-/}"

# 1. The binary.
if [ -z "$binary" ]; then
	command -v "$go" >/dev/null || die "no --binary given and '$go' is not on PATH: install Go or pass --binary PATH"
	version=$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)
	echo "Building relayd $version with $go build"
	(cd "$repo" && CGO_ENABLED=0 "$go" build -trimpath -ldflags "-X main.version=$version" -o "$tmp/relayd" ./cmd/relayd)
	binary="$tmp/relayd"
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
	die "binary $binary is not an executable file"
fi
install -d -m 0755 "$(dirname "$bin_dst")"
# Copy next to the target and rename: replacing the binary of a running
# relayd is safe (no "text file busy"); the new one runs after a restart.
install -m 0755 "$binary" "$bin_dst.new.$$"
mv -f "$bin_dst.new.$$" "$bin_dst"
say "binary        $bin_dst (0755)"

# 2. The relayd system user and group.
if [ -n "$destdir" ]; then
	say "user          skipped: DESTDIR is set, and a user cannot be created inside a staging root;"
	say "              create the relayd system user and group on the target before starting the service"
elif [ "$(id -u)" -ne 0 ]; then
	say "user          skipped: not root; as root run: useradd --system --user-group --home-dir /var/lib/relayd --no-create-home --shell /usr/sbin/nologin relayd"
elif getent passwd relayd >/dev/null; then
	say "user          relayd exists"
else
	nologin=$(command -v nologin || echo /usr/sbin/nologin)
	if command -v useradd >/dev/null; then
		getent group relayd >/dev/null || groupadd --system relayd
		useradd --system --gid relayd --home-dir /var/lib/relayd --no-create-home \
			--shell "$nologin" --comment "relayd content relay" relayd
	elif command -v adduser >/dev/null; then # busybox
		getent group relayd >/dev/null || addgroup -S relayd
		adduser -S -D -H -h /var/lib/relayd -s "$nologin" -G relayd -g "relayd content relay" relayd
	else
		die "neither useradd nor adduser found: create the relayd system user by hand and re-run"
	fi
	say "user          created system user and group relayd"
fi
can_chown=false
if $real_root && getent passwd relayd >/dev/null; then
	can_chown=true
fi

# 3. /etc/relayd and the config: never overwrite the operator's file.
install -d -m 0750 "$etc_dir"
$can_chown && chown root:relayd "$etc_dir"
if [ ! -e "$config_dst" ]; then
	install -m 0640 "$example" "$config_dst"
	$can_chown && chown root:relayd "$config_dst"
	say "config        $config_dst (0640, from docs/examples/$(basename "$example"))"
elif cmp -s "$example" "$config_dst"; then
	say "config        $config_dst unchanged (same as docs/examples/$(basename "$example"))"
else
	install -m 0640 "$example" "$config_dst.new"
	$can_chown && chown root:relayd "$config_dst.new"
	say "config        $config_dst exists and was KEPT; the $role example is in"
	say "              $config_dst.new: compare with diff -u $config_dst{,.new}"
fi

# 4. The data directory.
install -d -m 0750 "$data_dir"
chmod 0750 "$data_dir"
if $can_chown; then
	chown relayd:relayd "$data_dir"
	say "data          $data_dir (0750, relayd:relayd)"
else
	say "data          $data_dir (0750; not chowned: the unit's StateDirectory= hands it to relayd on first start)"
fi

# 5. The systemd unit, with this prefix in ExecStart. It is ours: always
# rewritten; local changes belong in a drop-in (systemctl edit relayd).
install -d -m 0755 "$(dirname "$unit_dst")"
sed "s|^ExecStart=/usr/local/bin/relayd |ExecStart=$prefix/bin/relayd |" "$unit_src" >"$tmp/relayd.service"
grep -q "^ExecStart=$prefix/bin/relayd serve " "$tmp/relayd.service" || die "could not set ExecStart in $unit_src"
install -m 0644 "$tmp/relayd.service" "$unit_dst"
say "unit          $unit_dst (ExecStart=$prefix/bin/relayd)"

if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl daemon-reload
	say "systemd       daemon-reload done"
else
	say "systemd       daemon-reload skipped (DESTDIR set or systemd not running)"
fi

# Next steps, by role.
echo
echo "Next steps:"
n=1
step() {
	echo "  $n. $*"
	n=$((n + 1))
}
step "Edit /etc/relayd/relayd.yaml: node, advertise, and the example.net names."
case $role in
origin)
	step "Make the TUF signing keys once, keep the .key files secret and off the tree (back them up!),"
	echo "     the root keys offline (docs/operations.md, The TUF repository, for k-of-n roots):"
	echo "       for r in root targets snapshot timestamp; do relayd keygen --role \$r --out /etc/relayd/keys; done"
	echo "       relayd tuf init /srv/relayd/tree --keys /etc/relayd/keys"
	step "Publish the tree (again after every change to it); give the origin timestamp-key: /etc/relayd/keys/timestamp.key:"
	echo "       relayd publish /srv/relayd/tree --keys /etc/relayd/keys"
	step "Give /srv/relayd/tree/-/tuf/1.root.json to every relay (root: /etc/relayd/root.json) and agent (--root)."
	step "Make the tree key once for the whole tree and copy it to every relay (tree-key-file:):"
	echo "       relayd keygen --tree --out /etc/relayd"
	echo "       chown root:relayd /etc/relayd/tree.key && chmod 0640 /etc/relayd/tree.key"
	;;
mirror | proxy)
	step "Copy the tree's trusted root (TREE/-/tuf/1.root.json at the origin) to /etc/relayd/root.json (root:)."
	step "Once per group, make the gossip key and copy it to every relay of the group:"
	echo "       relayd keygen --gossip --out /etc/relayd"
	echo "       chown root:relayd /etc/relayd/gossip.key && chmod 0640 /etc/relayd/gossip.key"
	step "Copy the tree's tree.key (made once with relayd keygen --tree) to /etc/relayd/tree.key (0640 root:relayd)."
	step "Open the firewall: 20080/tcp to agents and child relays, 7946/tcp+udp between the relays of the group."
	;;
esac
step "Start it:"
echo "       systemctl daemon-reload"
echo "       systemctl enable --now relayd"
step "Check it:"
echo "       systemctl status relayd; journalctl -u relayd -f"
echo "       curl -s http://127.0.0.1:20080/-/readyz; $prefix/bin/relayd status"
