"""mobilekd.compress"""
