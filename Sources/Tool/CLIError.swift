/// An error message for the user, printed as one line by ArgumentParser ("Error: …").
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Runs `body`; a library error that does not already name `path` is prefixed with it, so every
/// message says which file it is about.
func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as CLIError {
        throw e
    } catch {
        let text = "\(error)"
        throw CLIError(text.contains(path) ? text : "\(path): \(text)")
    }
}
