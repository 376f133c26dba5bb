"""mobilekd.data"""
