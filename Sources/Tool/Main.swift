import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Formats
import WilKE

/// Entry point: picks a fast OpenBLAS kernel (restarting once if the library chose its slow generic
/// one, see BLASKernel), then runs the command line.
@main
enum Main {
    /// Verbs that run the model; the others never touch BLAS and should not pay for a restart.
    static let computeVerbs: Set<String> = ["ask", "edit", "stats", "eval", "dev"]

    static func main() {
        #if canImport(Glibc)
        // Buffers of 1 MiB and more (tape blocks, panels, the patch step's tensor-sized buffers) go to
        // mmap and back to the system when freed. glibc's default threshold rises to 32 MiB after the
        // first such free, and then those buffers stay in its arenas: measured on the 8B shape's ROME edit
        // (docs/BENCHMARKS.md, Scale): peak RSS file + 1.45-1.56 GiB by default, + 1.12 GiB with this.
        // mallopt is not in Swift's Glibc module (malloc.h); M_MMAP_THRESHOLD is -3 in glibc's ABI.
        if let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            _ = unsafeBitCast(f, to: Mallopt.self)(-3, 1 << 20)
        }
        #endif
        if CommandLine.arguments.count > 1, computeVerbs.contains(CommandLine.arguments[1]),
           let core = BLASKernel.betterCoreType() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv("WILKE_BLAS_REEXEC", "1", 1)
            var args = CommandLine.arguments.map { strdup($0) }
            args.append(nil)
            execv("/proc/self/exe", &args)
            // execv only returns on failure: carry on with the slow kernel.
        }
        // Parsing errors (usage, --help, --version) are ArgumentParser's own and exit as it decides.
        var command: ParsableCommand
        do { command = try RootCommand.parseAsRoot() } catch { RootCommand.exit(withError: error) }
        do { try command.run() } catch { RootCommand.exit(withError: displayable(error)) }
    }

    /// Errors raised while running can carry bytes from a file (names, keys, JSON excerpts): they are
    /// printed escaped and capped (DisplayText), on one line. Exit codes, clean exits and validation
    /// errors pass through untouched so usage messages and exit statuses stay as they are.
    static func displayable(_ error: Error) -> Error {
        // `help` and `--help` reach here as ArgumentParser's internal CommandError (from the help
        // command's run), so every error of that module passes through, not just the public types.
        if error is ExitCode || error is CleanExit || error is ValidationError
            || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            return error
        }
        return CLIError(DisplayText.escaped("\(error)", limit: 600))
    }
}
