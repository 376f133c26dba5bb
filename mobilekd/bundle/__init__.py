"""mobilekd.bundle"""
