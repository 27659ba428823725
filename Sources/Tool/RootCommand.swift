import ArgumentParser

/// The `wilke` command line: one file per verb (`<Verb>Command.swift`). The entry point is Main.swift.
struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wilke",
        abstract: "Edit facts inside language-model checkpoints and ship each edit as a patch file.",
        version: "0.1.0",
        subcommands: [Dev.self],
        groupedSubcommands: [
            CommandGroup(name: "Checkpoints", subcommands: [Inspect.self, Convert.self, Tokenize.self, Ask.self]),
            CommandGroup(name: "Editing", subcommands: [Stats.self, Edit.self, Eval.self, Compare.self]),
            CommandGroup(name: "Patches", subcommands: [Apply.self, Revert.self, Stack.self, Diff.self, Show.self, Log.self, Verify.self, Export.self, Import.self, Rebase.self]),
        ]
    )
}
