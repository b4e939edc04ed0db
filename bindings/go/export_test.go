package qtx

// CHeapInUse exposes cHeapInUse to the external tests.
var CHeapInUse = cHeapInUse

// SetTestHookExecStarted sets the hook Cmd.Start runs between starting the
// exec and registering its handle (nil: none).
func SetTestHookExecStarted(f func()) { testHookExecStarted = f }

// AgentClosing is closed once Agent.Close began.
func AgentClosing(a *Agent) <-chan struct{} { return a.closing }

// LiveTokens counts the cancel tokens not yet released.
func LiveTokens() int64 { return liveTokens.Load() }
