import Foundation

/// ROME's context templates (ALGORITHM.md §2.1): "{}" plus sampled snippets followed by ". {}".
/// Deviation (documented): samples start from the five prompts MEMIT / EasyEdit use ("The",
/// "Therefore", "Because", "I", "You"), n/5 per prompt and length, instead of GPT-2's
/// "<|endoftext|>", which non-GPT-2 tokenizers do not have; and the sampler is seeded, so the same
/// model gives the same templates every run.
public enum ContextTemplates {
    public static let starts = ["The", "Therefore", "Because", "I", "You"]

    /// - Parameter lengths: (total tokens including the start, number of samples) per group.
    public static func sample(_ m: LoadedModel, lengths: [[Int]], seed: UInt64) throws -> [String] {
        var templates = ["{}"]
        var rng = SeededGenerator(seed: seed)
        let gen = Generator(model: m.model)
        for group in lengths where group.count == 2 {
            let (length, count) = (group[0], group[1])
            let perStart = max(1, count / starts.count)
            var prompts: [[Int]] = []
            for s in starts { for _ in 0..<perStart { prompts.append(m.tokenizer.encode(s, addSpecial: true)) } }
            let outs = try gen.generate(prompts: prompts, maxNewTokens: max(1, length - (prompts.first?.count ?? 1)),
                                        sampling: .topK(5), rng: &rng)
            for (p, o) in zip(prompts, outs) {
                templates.append(clean(m.tokenizer.decode(p.filter { $0 != m.tokenizer.bosID } + o)) + ". {}")
            }
        }
        return templates
    }

    /// Sizes of the consecutive template groups `sample` returns for `lengths`: "{}" alone, then one
    /// group per length (MEMIT's compute_ks averages each group, then the group means).
    public static func groupSizes(_ lengths: [[Int]]) -> [Int] {
        [1] + lengths.filter { $0.count == 2 }.map { max(1, $0[1] / starts.count) * starts.count }
    }

    /// NFKD, paragraph breaks to spaces, braces removed (they would be read as template holes).
    static func clean(_ text: String) -> String {
        text.decomposedStringWithCompatibilityMapping
            .replacingOccurrences(of: "\n\n", with: " ")
            .replacingOccurrences(of: "<|endoftext|>", with: "")
            .replacingOccurrences(of: "{", with: " ")
            .replacingOccurrences(of: "}", with: " ")
    }
}
