public enum WilKEError: Error {}
