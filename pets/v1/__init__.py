"""Generated protobuf and gRPC code for package pets.v1."""
