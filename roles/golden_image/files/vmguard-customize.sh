#!/usr/bin/env bash
# vmguard.hardening golden image: configure a freshly bootstrapped root file system.
# Runs on the build host with the root file system as $1 (/proc, /dev, /sys mounted in it).
# Identity (machine-id, SSH host keys, random seed, hostname, management key) is NOT set here:
# it is generated inside each guest at first boot by vmguard-firstboot.
set -euo pipefail
root=$1
here=$(cd "$(dirname "$0")" && pwd)
in_root() { chroot "$root" "$@"; }

printf 'vmguard-golden\n' > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
printf 'LABEL=vmguard-root\t/\text4\tdefaults,noatime,errors=remount-ro\t0\t1\n' > "$root/etc/fstab"

# Networking: systemd-networkd. vmguard-firstboot writes per-NIC runtime units from the
# kernel command line; without them every NIC falls back to DHCP.
install -d "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/99-vmguard-default.network" <<'EOF'
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
printf 'vmguard ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$root/etc/sudoers.d/vmguard"
chmod 0440 "$root/etc/sudoers.d/vmguard"
in_root visudo -cf /etc/sudoers.d/vmguard >/dev/null

install -d -m 0755 "$root/etc/ssh/sshd_config.d"
cat > "$root/etc/ssh/sshd_config.d/10-vmguard.conf" <<'EOF'
# vmguard.hardening golden image
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF

# First-boot identity.
install -m 0755 "$here/vmguard-firstboot" "$root/usr/local/sbin/vmguard-firstboot"
cat > "$root/etc/systemd/system/vmguard-firstboot.service" <<'EOF'
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
rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/tmp/*

# Kernel modules for hardware a virtio guest never has (about 250 MiB): smaller image, faster mkfs.
for kdir in "$root"/usr/lib/modules/*; do
  [ -d "$kdir/kernel" ] || continue
  for sub in drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging \
             drivers/bluetooth drivers/isdn drivers/iio drivers/input/touchscreen sound net/wireless \
             net/bluetooth net/mac80211; do
    rm -rf "${kdir:?}/kernel/$sub"
  done
  in_root depmod -a "$(basename "$kdir")"
done
