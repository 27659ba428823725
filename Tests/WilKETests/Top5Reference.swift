/// A real model's reference from transformers loading the same checkpoint (make_smollm2_reference.py,
/// make_gemma3_reference.py): per prompt its token ids and the top-5 next tokens with their logits
/// (and probabilities, where the script stored them).
struct Top5Reference: Decodable {
    struct Prompt: Decodable {
        var prompt: String
        var ids: [Int]
        var top5_ids: [Int]
        var top5_logits: [Double]
        var top5_probs: [Double]?
    }
    var prompts: [Prompt]
}
