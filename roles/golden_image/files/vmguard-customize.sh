#!/usr/bin/env bash
# vmguard.hardening golden image: configure a freshly bootstrapped root file system.
# Runs on the build host with the root file system as $1 (/proc, /dev, /sys mounted in it).
# Identity (machine-id, SSH host keys, random seed, hostname, management key) is NOT set here:
# it is generated inside each guest at first boot by vmguard-firstboot.
set -euo pipefail
root=$1
here=$(cd "$(dirname "$0")" && pwd)
in_root() { chroot "$root" "$@"; }
# put PATH MODE < content: write a file of the image from inside the chroot, so a symbolic link
# the packages left at PATH resolves inside the image, never on this host (a private temporary
# file next to PATH, renamed over it).
put() {
  # shellcheck disable=SC2016 # expanded by the shell inside the chroot
  in_root sh -c 'set -e; t=$(mktemp "$(dirname "$1")/.vmguard.XXXXXX"); cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"' \
    put "$1" "$2"
}

printf 'vmguard-golden\n' | put /etc/hostname 0644
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' | put /etc/hosts 0644
printf 'LABEL=vmguard-root\t/\text4\tdefaults,noatime,errors=remount-ro\t0\t1\n' | put /etc/fstab 0644

# Networking: systemd-networkd. vmguard-firstboot writes per-NIC runtime units from the
# kernel command line; without them every NIC falls back to DHCP.
in_root install -d /etc/systemd/network
put /etc/systemd/network/99-vmguard-default.network 0644 <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no

[DHCPv4]
ClientIdentifier=mac
EOF
in_root systemctl enable systemd-networkd.service >/dev/null 2>&1

# Management account: key-only, sudo without password, no root login over SSH.
in_root useradd --create-home --shell /bin/bash --comment "vmguard management" vmguard
in_root passwd --lock vmguard >/dev/null
printf 'vmguard ALL=(ALL:ALL) NOPASSWD: ALL\n' | put /etc/sudoers.d/vmguard 0440
in_root visudo -cf /etc/sudoers.d/vmguard >/dev/null

in_root install -d -m 0755 /etc/ssh/sshd_config.d
put /etc/ssh/sshd_config.d/10-vmguard.conf 0644 <<'EOF'
# vmguard.hardening golden image
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF

# First-boot identity.
put /usr/local/sbin/vmguard-firstboot 0755 < "$here/vmguard-firstboot"
put /etc/systemd/system/vmguard-firstboot.service 0644 <<'EOF'
[Unit]
Description=vmguard: per-guest identity from the kernel command line
DefaultDependencies=no
After=systemd-remount-fs.service local-fs.target
Before=systemd-networkd.service ssh.service sysinit.target
Wants=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/vmguard-firstboot

[Install]
WantedBy=sysinit.target
EOF
in_root systemctl enable vmguard-firstboot.service >/dev/null 2>&1

# Boot time under TCG: nothing that waits for a network we do not have, no periodic jobs.
for unit in systemd-networkd-wait-online.service e2scrub_reap.service e2scrub_all.timer \
            apt-daily.timer apt-daily-upgrade.timer fstrim.timer getty@tty1.service; do
  in_root systemctl mask "$unit" >/dev/null 2>&1
done

# Clean what the build left behind (the seal itself is enforced and verified by image_seal).
in_root apt-get clean
# Inside the chroot: a /tmp that is a link must not lead the deletion onto this host.
in_root sh -c 'rm -rf /var/lib/apt/lists/* /tmp/* /var/tmp/*'

# Kernel modules for hardware a virtio guest never has (about 250 MiB): smaller image, faster mkfs.
# shellcheck disable=SC2016 # expanded by the shell inside the chroot
in_root sh -c '
for kdir in /usr/lib/modules/*; do
  [ -d "$kdir/kernel" ] || continue
  for sub in drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging \
             drivers/bluetooth drivers/isdn drivers/iio drivers/input/touchscreen sound net/wireless \
             net/bluetooth net/mac80211; do
    rm -rf "${kdir:?}/kernel/$sub"
  done
  depmod -a "${kdir##*/}"
done'
