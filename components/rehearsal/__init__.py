"""The offline rehearsal of a deployment: the stack program under the SDK's mocks, dynamic resources created
by the real dynamic-provider host, against the local IMM emulator."""
