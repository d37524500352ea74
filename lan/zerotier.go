package lan

// newZerotierDriver: the zerotier type is being built; until then it
// answers unsupported.
func newZerotierDriver(m *Manager) driver { return unsupportedDriver{Zerotier} }
