"""radraft.dicom_node."""
