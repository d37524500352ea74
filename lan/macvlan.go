package lan

func newMacvlanDriver(m *Manager) driver { return unsupportedDriver{MacVLan} }
