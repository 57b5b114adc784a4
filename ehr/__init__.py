"""radraft.ehr."""
