"""`python -m bench.fuzz`: mutation fuzzing of radraft's DICOM and HL7 doors over real
sockets against a running `radraft serve` (README "Security")."""
