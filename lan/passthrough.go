package lan

func newPassthroughDriver(m *Manager) driver { return unsupportedDriver{PassThrough} }
