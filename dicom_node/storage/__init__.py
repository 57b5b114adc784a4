"""Storage of received instances: files placed durably (`files`), the index (`index`), its
repair at start (`repair`), retention (`purge`), free disk (`disk`, `space`) and partial
files of ended associations (`leftovers`).

The store's main names are re-exported here (`from radraft.dicom_node.storage import
InstanceStore` keeps working from before this became a package)."""

from radraft.dicom_node.storage.files import (
    TMP_SUFFIX,
    InstanceStore,
    fsync_dir,
    fsync_file,
    safe_name,
)

__all__ = ["TMP_SUFFIX", "InstanceStore", "fsync_dir", "fsync_file", "safe_name"]
