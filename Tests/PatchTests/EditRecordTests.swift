import Foundation
import Testing
@testable import Patch

/// The edit record's optional `estimates` (WilKE's fast scan): kept through encode / decode, and absent
/// from records without them, so patches written before it existed decode and encode unchanged.
@Suite struct EditRecordTests {
    @Test func estimatesRoundTripAndOldRecordsDecode() throws {
        let edit = EditRecord(requests: [Samples.request], method: "wilke", layer: 3, scores: [3: 0.01, 7: 0.02],
                              estimates: [0: 0.5, 3: 0.125, 7: 0.25, 14: 1e-3], hyperParameters: ["scan": "fast", "scan_top": "2"])
        let json = String(decoding: edit.json.canonicalBytes(), as: UTF8.self)
        #expect(json.contains(#""estimates":[{"estimate":"0.5","layer":0},{"estimate":"0.125","layer":3},"#))
        let back = try EditRecord(json: edit.json)
        #expect(back == edit)

        let old = EditRecord(requests: [Samples.request], method: "wilke", layer: 3, scores: [3: 0.01])
        #expect(!String(decoding: old.json.canonicalBytes(), as: UTF8.self).contains("estimates"))
        #expect(try EditRecord(json: old.json).estimates.isEmpty)

        // Unsorted estimates are refused like unsorted scores.
        guard case var .object(m) = edit.json else { Issue.record("not an object"); return }
        m["estimates"] = .array([.object(["layer": .int(7), "estimate": .string("0.25")]), .object(["layer": .int(3), "estimate": .string("0.125")])])
        #expect(throws: PatchError.self) { try EditRecord(json: .object(m)) }
    }
}
