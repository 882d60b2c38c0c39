"""nfs_client: fstab entries for NFSv4.2 (production mode); lab mode uses the bind-mounted tree."""

import os

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = [f"ansible://nfs-client?ansible_inventory={INVENTORY}"]


def test_fstab_mounts_both_exports_with_v42_hard(host):
    assert host.package("nfs-common").is_installed
    fstab = host.file("/etc/fstab").content_string.splitlines()
    entries = {line.split()[1]: line.split() for line in fstab if line.strip() and not line.startswith("#")}
    home = entries["/srv/twinhub/home"]
    assert home[0] == "storage.example.org:/home"
    assert home[2] == "nfs4"
    assert home[3].split(",")[:3] == ["vers=4.2", "hard", "timeo=600"]
    assert entries["/srv/twinhub/shared"][0] == "storage.example.org:/shared"
    assert host.file("/srv/twinhub/home").is_directory


def test_lab_mode_sees_the_shared_tree_and_installs_nothing():
    lab = testinfra.get_host(f"ansible://lab-client?ansible_inventory={INVENTORY}")
    assert not lab.package("nfs-common").is_installed
    assert "/srv/twinhub" not in lab.file("/etc/fstab").content_string
    # The tree is the machine's directory: a file written here is there.
    lab.check_output("touch /srv/twinhub/lab-probe && ls /srv/twinhub/lab-probe")
