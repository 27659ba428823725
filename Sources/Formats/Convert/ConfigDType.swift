import Foundation

extension Converter {
    /// config.json with its dtype keys set to `dtype`, so transformers' `dtype="auto"` loads the cast
    /// weights as what they are (a copied config kept "float32" and loaded bf16 weights as f32). Both
    /// spellings are written: `torch_dtype` (transformers 4) and `dtype` (5).
    static func retypedConfig(_ data: Data, dtype: DType, path: String) throws -> [UInt8] {
        guard var c = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FormatError.invalidConfigJSON(path: path)
        }
        let name = ["F32": "float32", "F16": "float16", "BF16": "bfloat16"][dtype.name] ?? "float32"
        c["torch_dtype"] = name
        c["dtype"] = name
        return [UInt8](try JSONSerialization.data(withJSONObject: c, options: [.sortedKeys, .prettyPrinted]))
    }
}
