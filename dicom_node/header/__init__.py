"""Reading the header attributes the node indexes: the fast raw scan or pydicom
(`reading`, `fields`), deflated datasets within bounds (`inflate`), identifiers checked.

The main names are re-exported here (`from radraft.dicom_node.header import
read_stored_header` keeps working from before this became a package)."""

from radraft.dicom_node.header.reading import (
    DEFAULT_LIMITS,
    InstanceHeader,
    read_attributes,
    read_header,
    read_stored_header,
)

__all__ = ["DEFAULT_LIMITS", "InstanceHeader", "read_attributes", "read_header",
           "read_stored_header"]
