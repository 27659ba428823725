import ArgumentParser


struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wilke",
        abstract: "Edit facts inside language-model checkpoints and ship each edit as a patch file.",
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self, Tokenize.self, Ask.self, Apply.self, Revert.self, Stack.self, Diff.self, Show.self,
                      Log.self, Verify.self, Dev.self]
    )
}
