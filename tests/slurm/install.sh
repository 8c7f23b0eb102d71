#!/usr/bin/env bash
# Install the Debian packages of a single-node SLURM test cluster (needs root and apt).
#   tests/slurm/install.sh               munge, slurmctld, slurmd, slurm-client
#   WITH_ACCOUNTING=1 tests/slurm/install.sh   also slurmdbd and mariadb-server (sacct)
# Idempotent: does nothing when every binary is already present.
set -euo pipefail

packages=(munge slurmctld slurmd slurm-client)
binaries=(munged slurmctld slurmd sbatch squeue sinfo scontrol)
if [[ "${WITH_ACCOUNTING:-0}" == 1 ]]; then
    packages+=(slurmdbd mariadb-server)
    binaries+=(slurmdbd mariadbd)
fi

missing=0
for binary in "${binaries[@]}"; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$binary" >/dev/null; then
        missing=1
    fi
done
if [[ $missing == 0 ]]; then
    echo "install.sh: SLURM packages already installed"
    exit 0
fi

if [[ $(id -u) != 0 ]]; then
    echo "install.sh: installing ${packages[*]} needs root" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "install.sh: apt-get not found; install ${packages[*]} by hand" >&2
    exit 1
fi

# Another apt process may hold the dpkg lock (CI images install things in parallel): wait for it.
apt_options=(-o DPkg::Lock::Timeout=300 -y -q --no-install-recommends)
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q
apt-get install "${apt_options[@]}" "${packages[@]}"
echo "install.sh: installed ${packages[*]}"
