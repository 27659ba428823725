import ArgumentParser

@main
struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wilke",
        abstract: "Edit facts inside language-model checkpoints and ship each edit as a patch file.",
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self, Stats.self, Dev.self]
    )
}
