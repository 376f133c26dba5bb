"""mobilekd.export"""
