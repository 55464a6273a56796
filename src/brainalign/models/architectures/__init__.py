"""Network architectures that brainalign builds itself, where no importable
implementation exists offline (torchvision does not import with every torch)."""
