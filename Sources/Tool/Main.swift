import Foundation
import WilKE

/// Entry point: picks a fast OpenBLAS kernel (restarting once if the library chose its slow generic
/// one, see BLASKernel), then runs the command line.
@main
enum Main {
    static func main() {
        if let core = BLASKernel.betterCoreType() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv("WILKE_BLAS_REEXEC", "1", 1)
            var args = CommandLine.arguments.map { strdup($0) }
            args.append(nil)
            execv("/proc/self/exe", &args)
            // execv only returns on failure: carry on with the slow kernel.
        }
        RootCommand.main()
    }
}
