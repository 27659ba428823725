/// Element types of both checkpoint formats in one enum. A type is stored in blocks: `blockSize`
/// elements take `blockBytes` bytes (1 element for plain types; 32 or 256 for ggml's quantized types).
/// Sub-byte safetensors types (F4, F6_*) have `bits` set and a block of 1 element with 0 whole bytes;
/// their sizes are computed from `bits`.
public enum DType: Hashable, Sendable, CaseIterable {
    // Plain types (both formats where they exist)
    case f64, f32, f16, bf16
    case i8, i16, i32, i64, u8, u16, u32, u64, bool
    // safetensors-only
    case f8e5m2, f8e4m3, f8e8m0, f8e4m3fnuz, f8e5m2fnuz, f4, f6e2m3, f6e3m2, c64
    // ggml quantized types
    case q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_K, q3_K, q4_K, q5_K, q6_K, q8_K
    case iq2_xxs, iq2_xs, iq3_xxs, iq1_s, iq4_nl, iq3_s, iq2_s, iq4_xs, iq1_m, tq1_0, tq2_0, mxfp4

    /// Bits per element for plain types; nil for block-quantized types.
    public var bits: Int? {
        switch self {
        case .f64, .i64, .u64, .c64: return 64
        case .f32, .i32, .u32: return 32
        case .f16, .bf16, .i16, .u16: return 16
        case .i8, .u8, .bool, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: return 8
        case .f6e2m3, .f6e3m2: return 6
        case .f4: return 4
        default: return nil
        }
    }

    /// Elements per block (1 for plain types).
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq3_s, .iq2_s,
             .iq4_xs, .iq1_m, .tq1_0, .tq2_0: return 256
        default: return 1
        }
    }

    /// Bytes per block (ggml-common.h; FORMATS.md §2.6). For plain types, bytes per element.
    public var blockBytes: Int {
        switch self {
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q8_1: return 36
        case .q2_K: return 84
        case .q3_K: return 110
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        case .q8_K: return 292
        case .iq2_xxs: return 66
        case .iq2_xs: return 74
        case .iq3_xxs: return 98
        case .iq1_s: return 50
        case .iq4_nl: return 18
        case .iq3_s: return 110
        case .iq2_s: return 82
        case .iq4_xs: return 136
        case .iq1_m: return 56
        case .tq1_0: return 54
        case .tq2_0: return 66
        case .mxfp4: return 17
        default: return (bits ?? 8) / 8
        }
    }

    public var isQuantized: Bool { bits == nil }

    /// Byte size of `count` elements, or nil on overflow or when `count` is not a whole number of
    /// blocks / bytes.
    public func byteCount(elements count: Int) -> Int? {
        if let bits {
            let (nbits, o) = count.multipliedReportingOverflow(by: bits)
            guard !o, nbits % 8 == 0 else { return nil }
            return nbits / 8
        }
        guard count % blockSize == 0 else { return nil }
        let (n, o) = (count / blockSize).multipliedReportingOverflow(by: blockBytes)
        return o ? nil : n
    }

    // MARK: safetensors names (FORMATS.md §1.2)

    public init?(safetensorsName name: String) {
        guard let t = DType.safetensorsNames.first(where: { $0.value == name })?.key else { return nil }
        self = t
    }

    public var safetensorsName: String? { DType.safetensorsNames[self] }

    static let safetensorsNames: [DType: String] = [
        .bool: "BOOL", .f4: "F4", .f6e2m3: "F6_E2M3", .f6e3m2: "F6_E3M2", .u8: "U8", .i8: "I8",
        .f8e5m2: "F8_E5M2", .f8e4m3: "F8_E4M3", .f8e8m0: "F8_E8M0", .f8e4m3fnuz: "F8_E4M3FNUZ",
        .f8e5m2fnuz: "F8_E5M2FNUZ", .i16: "I16", .u16: "U16", .f16: "F16", .bf16: "BF16", .i32: "I32",
        .u32: "U32", .f32: "F32", .c64: "C64", .f64: "F64", .i64: "I64", .u64: "U64",
    ]

    /// The safetensors writer sorts by this (descending), then by name (Rust `Dtype` declaration order).
    public var safetensorsAlignmentRank: Int {
        let order: [DType] = [.bool, .f4, .f6e2m3, .f6e3m2, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz,
                              .f8e5m2fnuz, .i16, .u16, .f16, .bf16, .i32, .u32, .f32, .c64, .f64, .i64, .u64]
        return order.firstIndex(of: self) ?? -1
    }

    // MARK: ggml type ids (FORMATS.md §2.5)

    public init?(ggmlType id: UInt32) {
        guard let t = DType.ggmlIDs.first(where: { $0.value == id })?.key else { return nil }
        self = t
    }

    public var ggmlType: UInt32? { DType.ggmlIDs[self] }

    static let ggmlIDs: [DType: UInt32] = [
        .f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q5_0: 6, .q5_1: 7, .q8_0: 8, .q8_1: 9, .q2_K: 10, .q3_K: 11,
        .q4_K: 12, .q5_K: 13, .q6_K: 14, .q8_K: 15, .iq2_xxs: 16, .iq2_xs: 17, .iq3_xxs: 18, .iq1_s: 19,
        .iq4_nl: 20, .iq3_s: 21, .iq2_s: 22, .iq4_xs: 23, .i8: 24, .i16: 25, .i32: 26, .i64: 27, .f64: 28,
        .iq1_m: 29, .bf16: 30, .tq1_0: 34, .tq2_0: 35, .mxfp4: 39,
    ]

    /// Short display name: safetensors spelling for plain types, ggml spelling for quantized ones.
    public var name: String {
        if let s = safetensorsName { return s }
        return "\(self)".uppercased().replacingOccurrences(of: "_K", with: "_K")
    }
}
